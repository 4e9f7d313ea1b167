"""The base of every absolute URL the API writes (``Location``, ``@odata.context``,
``@odata.nextLink``, ``jwks_uri``).

A client chooses the ``Host`` header, so it is used only when the operator listed it in
``allowed_hosts``; otherwise the base is the configured ``public_url``, or else the local
address of the connection, which the server's socket gives and no client can change.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

__all__ = ["public_base_url", "public_url_of_path"]


def public_base_url(request: Request) -> str:
    """``scheme://host[:port][/prefix]``, without a trailing slash."""
    settings = request.app.state.service.settings
    host = request.headers.get("host", "").strip().lower()
    if host and host in settings.allowed_hosts:
        return f"{_scheme(request)}://{host}"
    if settings.public_url is not None:
        return settings.public_url
    return _listening_address(request)


def public_url_of_path(request: Request) -> str:
    """This request's path (without query) under the public base URL."""
    return public_base_url(request) + quote(request.scope["path"], safe="/()'$@:,;=!*+")


def _scheme(request: Request) -> str:
    return str(request.scope.get("scheme", "http"))


def _listening_address(request: Request) -> str:
    scheme = _scheme(request)
    server = request.scope.get("server")
    if not server:
        return f"{scheme}://localhost"
    host, port = server
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(scheme)
    suffix = "" if port is None or port == default_port else f":{port}"
    return f"{scheme}://{host}{suffix}"
