"""A small HTTP server for the health and metrics of a process that serves no API (a worker).

``GET /healthz`` (liveness: 200 ``{"status": "ok", "kind": "worker", "pid": N}``),
``GET /readyz`` (200 ``{"status": "ready"}``, or 503 ``{"status": "unavailable", "reason":
...}``), ``GET /metrics`` (Prometheus text format); any other path is 404, any other method
501. It listens on 127.0.0.1 unless told otherwise, reads a request head of at most
``MAX_HEAD_BYTES`` (a longer one is refused with 431, or 414 when the request line alone is
longer), waits ``TIMEOUT_SECONDS`` at most for a client's bytes, and answers one request per
connection. Each connection gets a thread (``ThreadingHTTPServer``) that ends with it.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

from .health import Readiness, liveness

__all__ = ["MAX_HEAD_BYTES", "TIMEOUT_SECONDS", "HealthServer"]

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 8 * 1024
"""Largest request line plus headers read; a probe or a scraper sends a few hundred bytes."""

TIMEOUT_SECONDS = 10.0
"""How long a connection may keep the server waiting for its next bytes."""

Ready = Callable[[], Readiness | bool]
Metrics = Callable[[], tuple[bytes, str]]


class _BoundedHead:
    """The connection's input, of which at most ``limit`` bytes are read (the request head:
    a GET carries no body); ``cut_short`` tells that a read reached the limit."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._left = limit
        self.cut_short = False

    def readline(self, size: int = -1) -> bytes:
        by_budget = size < 0 or size > self._left
        allowed = self._left if by_budget else size
        line = self._stream.readline(allowed) if allowed > 0 else b""
        self._left -= len(line)
        if by_budget and self._left <= 0 and not line.endswith(b"\n"):
            self.cut_short = True
        return line

    def close(self) -> None:
        self._stream.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    rfile: Any

    def setup(self) -> None:
        self.timeout = self.server.timeout_seconds
        super().setup()
        self.rfile = _BoundedHead(self.rfile, self.server.max_head_bytes)

    def parse_request(self) -> bool:
        if self.rfile.cut_short:  # the request line alone is over the bound
            self.command, self.requestline, self.request_version = None, "", "HTTP/1.0"
            self.close_connection = True
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
            return False
        if not super().parse_request():
            return False
        if self.rfile.cut_short:
            self.close_connection = True
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return False
        return True

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/healthz":
            self._json(HTTPStatus.OK, liveness(self.server.kind))
        elif path == "/readyz":
            readiness = self._readiness()
            if readiness:
                self._json(HTTPStatus.OK, {"status": "ready"})
            else:
                body = {"status": "unavailable", "reason": readiness.reason or "Not ready."}
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, body)
        elif path == "/metrics":
            self._metrics()
        else:
            self._json(HTTPStatus.NOT_FOUND, {"status": "notFound"})

    def _readiness(self) -> Readiness:
        try:
            answer = self.server.ready()
        except Exception:  # noqa: BLE001 - a probe must get an answer
            logger.exception("readiness check failed")
            return Readiness(False, "The readiness check failed.")
        return answer if isinstance(answer, Readiness) else Readiness(bool(answer))

    def _metrics(self) -> None:
        try:
            body, content_type = self.server.metrics()
        except Exception:  # noqa: BLE001 - a scrape must get an answer
            logger.exception("metrics could not be rendered")
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"status": "error"})
            return
        self._send(HTTPStatus.OK, body, content_type)

    def _json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("health server: %s", format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("health server: %r %s", self.requestline, code)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        kind: str,
        ready: Ready,
        metrics: Metrics,
        max_head_bytes: int,
        timeout_seconds: float,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.kind = kind
        self.ready = ready
        self.metrics = metrics
        self.max_head_bytes = max_head_bytes
        self.timeout_seconds = timeout_seconds
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer's own asks DNS for the host's full name, which can take seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


class HealthServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` of a process, served from a thread.

    ``ready`` answers a ``Readiness`` (its reason goes into the 503) or a plain bool;
    ``metrics`` the body and content type of ``/metrics`` (``render_metrics``). Port 0 picks
    a free port: read ``port`` after ``start``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ready: Ready,
        metrics: Metrics,
        kind: str = "worker",
        max_head_bytes: int = MAX_HEAD_BYTES,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self._address = (host, port)
        self._kind, self._ready, self._metrics = kind, ready, metrics
        self._max_head_bytes, self._timeout_seconds = max_head_bytes, timeout_seconds
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (known once started)."""
        if self._server is None:
            raise RuntimeError("the health server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> None:
        """Listen and serve from a daemon thread (an error to bind is raised here)."""
        if self._server is not None:
            raise RuntimeError("the health server is already started")
        self._server = _Server(
            self._address,
            kind=self._kind,
            ready=self._ready,
            metrics=self._metrics,
            max_head_bytes=self._max_head_bytes,
            timeout_seconds=self._timeout_seconds,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="industrydata-health-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and wait for the serving thread (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
