"""Response helpers shared by the routers: Graph JSON with @odata.context and headers."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ..public_url import public_base_url

__all__ = ["context_url", "entity_response", "service_root"]


def service_root(request: Request) -> str:
    """``<public base URL>/beta``."""
    return public_base_url(request) + "/beta"


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
