"""Dependencies of the routes: the service, the authenticated caller, the JSON body."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from .. import sharing
from ..errors import (
    BadRequest,
    NotAcceptable,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from ..identity import Principal
from ..service import Service
from .bounded_json import MAX_JSON_DEPTH, JsonNestingError, parse_json

__all__ = [
    "CurrentPrincipal",
    "JsonBody",
    "OptionalJsonBody",
    "ServiceDep",
    "require_json_accept",
    "require_no_body",
]

MAX_BODY_BYTES = 1024 * 1024


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_principal(request: Request, service: ServiceDep) -> Principal:
    """The caller behind ``Authorization: Bearer``, authorised to use the API.

    401 when the token is absent or invalid; 403 when it is delegated and its user is not a
    Global Administrator in the tenant's directory (one directory read per request; FastAPI
    resolves the dependency once per request).
    """
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("An access token is required (Authorization: Bearer <token>).")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("The Authorization header must be 'Bearer <token>'.")
    principal = service.token_validator.validate(token.strip())
    sharing.authorize_caller(service.store, principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_json_accept(request: Request) -> None:
    """406 unless the client accepts JSON."""
    accept = request.headers.get("accept")
    if not accept:
        return
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if types & {"*/*", "application/*", "application/json"}:
        return
    raise NotAcceptable("This resource is served as application/json only.")


async def _read_body(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge("The request body is larger than 1 MiB.")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge("The request body is larger than 1 MiB.")
    if not raw.strip():
        return None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType("The request body must be application/json.")
    try:
        return parse_json(bytes(raw))
    except JsonNestingError:
        raise BadRequest(
            f"The request body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels."
        ) from None
    except ValueError:
        raise BadRequest("The request body is not valid UTF-8 JSON.") from None


async def get_optional_json_body(request: Request) -> Any:
    """The parsed JSON body, or None when the request has none."""
    return await _read_body(request)


async def get_json_body(request: Request) -> Any:
    """The parsed JSON body; 400 when missing."""
    body = await _read_body(request)
    if body is None:
        raise BadRequest("A JSON request body is required.")
    return body


JsonBody = Annotated[Any, Depends(get_json_body)]
OptionalJsonBody = Annotated[Any, Depends(get_optional_json_body)]


def require_no_body(body: object) -> None:
    """400 unless an action without parameters got no body or ``{}`` (an ``OptionalJsonBody``)."""
    if body not in (None, {}):
        raise BadRequest("This action takes no request body.")
