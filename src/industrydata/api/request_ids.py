"""``request-id`` on every response, and the client's ``client-request-id`` echoed; the request
id is bound to the log context while the request is served (uvicorn's access line included)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..observability import log_context

__all__ = ["RequestIdMiddleware", "request_id_headers", "request_ids"]

_MAX_CLIENT_REQUEST_ID = 128


def request_ids(request: Request) -> tuple[str, str | None]:
    """This request's id (made once per request) and the client's id, if it sent a sane one."""
    state = request.scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = str(uuid.uuid4())
    client = request.headers.get("client-request-id")
    if client is not None and (len(client) > _MAX_CLIENT_REQUEST_ID or not client.isprintable()):
        client = None
    return state["request_id"], client


def request_id_headers(request: Request) -> dict[str, str]:
    request_id, client_request_id = request_ids(request)
    headers = {"request-id": request_id}
    if client_request_id:
        headers["client-request-id"] = client_request_id
    return headers


class RequestIdMiddleware:
    """Adds the ids to every response that does not carry them yet, and binds the request id
    to the log context for the duration of the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = request_id_headers(Request(scope))

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (name.encode(), value.encode())
                    for name, value in headers.items()
                    if name.encode() not in present
                ]
            await send(message)

        with log_context(request_id=headers["request-id"]):
            await self.app(scope, receive, send_with_ids)
