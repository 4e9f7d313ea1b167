"""How a request's path and method find a resource, settled before the router runs.

- **Key in parentheses.** Graph and OData clients address an entity as
  ``dataShareOutgoingFlows('id')`` (percent-encoded or not); every such segment is rewritten to
  the segment form the routes declare (``dataShareOutgoingFlows/id``), so both forms reach the
  same route everywhere. The key is a quoted string (``''`` escapes a quote) or a bare GUID;
  anything else in the parentheses is a 400. Empty parentheses are a function call
  (``getPotentialDataShareInvitees()``) and stay as they are.
- **Trailing slash.** Dropped, instead of the router's redirect, whose ``Location`` would have
  to name a host.
- **Method.** Among the routes whose path template matches, the most specific (fewest path
  parameters) own the path: ``…/getPotentialDataShareInvitees`` belongs to the function, not to
  ``…/{flow_id}``. A method none of them declares is a 405 whose ``Allow`` lists all of theirs;
  ``OPTIONS`` is answered 204 with that ``Allow``. The router then takes the first route that
  matches, so a router declares its literal paths before its parameter paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import BadRequest
from .errors import domain_error_response, error_response

__all__ = ["ResourcePathMiddleware", "allowed_methods", "canonical_path"]

_KEYED_SEGMENT = re.compile(r"(?P<name>[^()]+)\((?P<key>.+)\)")
_QUOTED_KEY = re.compile(r"'(?P<value>(?:[^']|'')+)'")
_GUID_KEY = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")


def canonical_path(path: str) -> str:
    """``path`` with keys in parentheses as segments and no trailing slash.

    Raises:
        BadRequest: parentheses hold something other than a quoted string or a GUID.
    """
    segments: list[str] = []
    for segment in path.split("/"):
        keyed = _KEYED_SEGMENT.fullmatch(segment)
        if keyed is None:
            segments.append(segment)
        else:
            segments += [keyed["name"], _key_value(keyed["key"], segment)]
    return "/".join(segments).rstrip("/") or "/"


def _key_value(literal: str, segment: str) -> str:
    quoted = _QUOTED_KEY.fullmatch(literal)
    if quoted is not None:
        return quoted["value"].replace("''", "'")
    if _GUID_KEY.fullmatch(literal):
        return literal
    raise BadRequest(
        f"The key of '{segment[:80]}' must be a quoted string, as in ('…'), or a GUID."
    )


def _parameter_count(route: BaseRoute) -> int:
    return len(getattr(route, "param_convertors", {}))


def allowed_methods(routes: Iterable[BaseRoute], path: str) -> frozenset[str]:
    """The methods of the most specific routes matching ``path``, with OPTIONS; empty when no
    route matches."""
    matching = [
        route
        for route in routes
        if isinstance(route, Route) and route.path_regex.match(path) is not None
    ]
    if not matching:
        return frozenset()
    fewest = min(map(_parameter_count, matching))
    methods = {"OPTIONS"}
    for route in matching:
        if _parameter_count(route) == fewest:
            methods |= route.methods or set()
    return frozenset(methods)


class ResourcePathMiddleware:
    """Rewrites the path to its canonical form, then answers OPTIONS and unknown methods."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        """``routes``: every route of the app; entries that are not path routes are skipped."""
        self.app = app
        self.routes = [route for route in routes if isinstance(route, Route)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            path = canonical_path(scope["path"])
        except BadRequest as exc:
            await domain_error_response(Request(scope), exc)(scope, receive, send)
            return
        scope = {**scope, "path": path}
        allowed = allowed_methods(self.routes, get_route_path(scope))
        method = scope["method"]
        if allowed and method not in allowed - {"OPTIONS"}:
            headers = {"Allow": ", ".join(sorted(allowed))}
            if method == "OPTIONS":
                response: Response = Response(status_code=204, headers=headers)
            else:
                response = error_response(
                    Request(scope),
                    status=405,
                    code="methodNotAllowed",
                    message=f"The method {method} is not allowed on this resource.",
                    headers=headers,
                )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
