"""The size of a request's head (request line and headers), bounded in the application too.

``industrydata serve`` makes uvicorn's parser stop reading a head longer than the bound, but the
parser judges only heads still incomplete after a read, and one read of the socket can bring
more than the bound at once. This middleware applies the same bound exactly to every request
that got through, whatever server runs the app: 431 in the Graph envelope.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

__all__ = ["RequestHeadLimitMiddleware", "head_size"]

_LINE_OVERHEAD = len(" HTTP/1.1\r\n ")
_HEADER_OVERHEAD = len(": \r\n")


def head_size(scope: Scope) -> int:
    """Bytes of the request line and headers as sent on HTTP/1.1."""
    target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"]) + 1
    headers = sum(len(name) + len(value) + _HEADER_OVERHEAD for name, value in scope["headers"])
    return len(scope["method"]) + target + _LINE_OVERHEAD + headers


class RequestHeadLimitMiddleware:
    """Refuses a request whose head is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and head_size(scope) > self.max_bytes:
            response = error_response(
                Request(scope),
                status=431,
                code="requestHeaderFieldsTooLarge",
                message=f"The request line and headers are larger than {self.max_bytes} bytes.",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
