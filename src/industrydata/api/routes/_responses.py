"""Response helpers shared by the routers: Graph JSON with @odata.context and headers."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

__all__ = ["context_url", "entity_response", "service_root"]


def service_root(request: Request) -> str:
    """``http://host:port/beta`` as the client addressed it."""
    return str(request.base_url).rstrip("/") + "/beta"


def context_url(request: Request, fragment: str) -> str:
    return f"{service_root(request)}/$metadata#{fragment}"


def entity_response(
    request: Request,
    body: dict[str, Any],
    *,
    context: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A single entity at top level, with its ``@odata.context``."""
    return JSONResponse(
        {"@odata.context": context_url(request, context), **body},
        status_code=status,
        headers=headers,
    )
