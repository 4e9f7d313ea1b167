"""Small real servers on loopback ports for the outbound-connection tests: one that only
counts the connections it receives (it must receive none when the service refuses an
endpoint), and one that answers every request with an error full of its own words (which
must never reach a message)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REMOTE_WORDS = "REMOTE-SERVER-WORDS"
"""What the hostile server puts in its status reason, headers and body."""


@dataclass
class CountingServer:
    """A TCP listener on 127.0.0.1 that accepts, counts and closes connections."""

    port: int
    connections: list[tuple[str, int]] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@contextmanager
def counting_server() -> Iterator[CountingServer]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)
    server = CountingServer(listener.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, peer = listener.accept()
            except (TimeoutError, OSError):
                continue
            server.connections.append(peer)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join()
        listener.close()


class _HostileHandler(BaseHTTPRequestHandler):
    """Answers every request with ``status`` and its own reason, error code and message
    (and a ``Location`` header when ``location`` is set)."""

    status = 403
    location: str | None = None

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{REMOTE_WORDS}</Code>'
            f"<Message>{REMOTE_WORDS} in the message</Message></Error>"
        ).encode()
        self.send_response(self.status, f"{REMOTE_WORDS} reason")
        self.send_header("x-ms-error-code", REMOTE_WORDS)
        if self.location:
            self.send_header("Location", self.location)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextmanager
def hostile_storage_server(status: int = 403, location: str | None = None) -> Iterator[str]:
    """An http server on 127.0.0.1 answering every request with ``status``; yields its
    origin."""
    handler = type("Handler", (_HostileHandler,), {"status": status, "location": location})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
