"""The one mapping from errors to the Graph error envelope (contract §9).

Domain errors carry their status and code; HTTP-level errors (unknown path, wrong method)
and anything unexpected are shaped here too, so no response ever shows a stack trace.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    ErrorDetail,
    IndustryDataError,
    StoreBusy,
    TooManyRequests,
    Unauthenticated,
)
from ..observability import log_context
from .request_ids import request_id_headers, request_ids

__all__ = ["domain_error_response", "error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "badRequest",
    401: "unauthenticated",
    403: "accessDenied",
    404: "itemNotFound",
    405: "methodNotAllowed",
    406: "notAcceptable",
    409: "conflict",
    412: "preconditionFailed",
    413: "payloadTooLarge",
    415: "unsupportedMediaType",
    422: "unprocessableEntity",
    429: "tooManyRequests",
    431: "requestHeaderFieldsTooLarge",
    500: "generalException",
    503: "serviceUnavailable",
}


def error_response(
    request: Request,
    *,
    status: int,
    code: str,
    message: str,
    target: str | None = None,
    details: list[ErrorDetail] | None = None,
    inner_code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A Graph error envelope with the request's ids."""
    request_id, client_request_id = request_ids(request)
    inner: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
    }
    if inner_code:
        inner = {"code": inner_code, **inner}
    if client_request_id:
        inner["client-request-id"] = client_request_id
    error: dict[str, Any] = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    if details:
        error["details"] = [
            {"code": detail.code, "message": detail.message, "target": detail.target}
            for detail in details
        ]
    error["innerError"] = inner
    return JSONResponse(
        {"error": error},
        status_code=status,
        headers={**request_id_headers(request), **(headers or {})},
    )


def domain_error_response(request: Request, exc: IndustryDataError) -> JSONResponse:
    """The envelope of a domain error, also for middleware that answers before routing."""
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(exc, (TooManyRequests, StoreBusy)):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if isinstance(exc, StoreBusy):
        logger.warning("request refused, store busy: %s %s", request.method, request.url.path)
        message = exc.message
    elif exc.status >= 500:
        logger.error("request failed: %s: %s", type(exc).__name__, exc.message)
        message = "An internal error occurred."
    else:
        message = exc.message
    return error_response(
        request,
        status=exc.status,
        code=exc.code,
        message=message,
        target=exc.target,
        details=exc.details,
        inner_code=exc.inner_code if exc.status == 400 else exc.code,
        headers=headers,
    )


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IndustryDataError)
    return domain_error_response(request, exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "badRequest")
    message = {
        404: "The requested resource does not exist.",
        405: f"The method {request.method} is not allowed on this resource.",
    }.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})
    return error_response(
        request, status=exc.status_code, code=code, message=message, headers=headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        request,
        status=400,
        code="badRequest",
        message="The request is malformed.",
        inner_code="badRequest",
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette calls this outside the middleware that bound the request id: bind it again.
    with log_context(request_id=request_ids(request)[0]):
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(
        request, status=500, code="generalException", message="An internal error occurred."
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IndustryDataError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
