"""The worker's health server: /healthz, /readyz and /metrics over real HTTP on a free
loopback port; 404 elsewhere; the request head and idle connections bounded."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from industrydata.observability import (
    METRICS_CONTENT_TYPE,
    HealthServer,
    Readiness,
    ReadinessCheck,
    render_metrics,
)
from industrydata.observability.health_server import MAX_HEAD_BYTES
from industrydata.store import open_store
from tests.observability.scrape import closed_port_postgres_url, family_names, sample_value


@pytest.fixture
def serve() -> Iterator[Callable[..., HealthServer]]:
    """``serve(ready=..., metrics=..., **options)`` → a started server, stopped afterwards."""
    servers: list[HealthServer] = []

    def start(**options: object) -> HealthServer:
        options.setdefault("ready", lambda: True)
        options.setdefault("metrics", lambda: render_metrics(None))
        server = HealthServer(**options)  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def get(server: HealthServer, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(server.url + path, headers=headers, timeout=10, trust_env=False)


def raw_exchange(server: HealthServer, request: bytes) -> bytes:
    """Send ``request`` as it is; everything the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_healthz_says_the_worker_is_alive(serve: Callable[..., HealthServer]) -> None:
    server = serve()

    response = get(server, "/healthz")

    assert server.url.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok" and body["kind"] == "worker"
    assert body["pid"] > 0


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        (True, 200, {"status": "ready"}),
        (Readiness(True), 200, {"status": "ready"}),
        (False, 503, {"status": "unavailable", "reason": "Not ready."}),
        (
            Readiness(False, "The store does not answer."),
            503,
            {"status": "unavailable", "reason": "The store does not answer."},
        ),
    ],
)
def test_readyz_answers_what_the_check_says(
    serve: Callable[..., HealthServer], answer: object, status: int, body: dict[str, str]
) -> None:
    response = get(serve(ready=lambda: answer), "/readyz")

    assert (response.status_code, response.json()) == (status, body)


def test_a_readiness_check_that_raises_is_a_503(serve: Callable[..., HealthServer]) -> None:
    def broken() -> bool:
        raise RuntimeError("postgresql://app:s3cret@db")

    response = get(serve(ready=broken), "/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "The readiness check failed."}


def test_readyz_of_a_worker_follows_its_store(
    serve: Callable[..., HealthServer], store_url: str, tmp_path: Path
) -> None:
    store = open_store(store_url)
    unreachable = open_store(closed_port_postgres_url())
    try:
        ready = serve(ready=ReadinessCheck(store).check)
        not_ready = serve(ready=ReadinessCheck(unreachable).check)

        assert get(ready, "/readyz").status_code == 200
        response = get(not_ready, "/readyz")
        assert response.status_code == 503
        assert response.json()["reason"] == "The store does not answer."
    finally:
        store.dispose()
        unreachable.dispose()


def test_metrics_are_served_in_the_prometheus_text_format(
    serve: Callable[..., HealthServer], store_url: str
) -> None:
    store = open_store(store_url)
    try:
        server = serve(metrics=lambda: render_metrics(store, lambda: {"exports": 2}))
        response = get(server, "/metrics")
    finally:
        store.dispose()

    assert response.status_code == 200
    assert response.headers["content-type"] == METRICS_CONTENT_TYPE
    assert sample_value(response.text, "industrydata_queue_depth", queue="exports") == 2
    assert sample_value(response.text, "industrydata_runs", status="running") == 0
    assert "industrydata_run_duration_seconds" in family_names(response.text)


def test_metrics_that_fail_to_render_are_a_500_without_details(
    serve: Callable[..., HealthServer],
) -> None:
    def broken() -> tuple[bytes, str]:
        raise RuntimeError("AccountKey=secret")

    response = get(serve(metrics=broken), "/metrics")

    assert response.status_code == 500
    assert response.json() == {"status": "error"}


@pytest.mark.parametrize("path", ["/", "/health", "/readyz/extra", "/beta/metrics", "/metrics.txt"])
def test_any_other_path_is_404(serve: Callable[..., HealthServer], path: str) -> None:
    response = get(serve(), path)

    assert response.status_code == 404
    assert response.json() == {"status": "notFound"}


def test_another_method_is_refused(serve: Callable[..., HealthServer]) -> None:
    response = httpx.post(serve().url + "/healthz", content=b"{}", trust_env=False)

    assert response.status_code == 501


def test_a_query_string_is_ignored(serve: Callable[..., HealthServer]) -> None:
    assert get(serve(), "/healthz?verbose=1").status_code == 200


def test_a_head_over_the_bound_is_431_and_the_server_goes_on(
    serve: Callable[..., HealthServer],
) -> None:
    server = serve()

    refused = get(server, "/healthz", headers={"X-Padding": "a" * MAX_HEAD_BYTES})
    many = get(server, "/healthz", headers={f"X-H{i}": "v" * 60 for i in range(200)})
    within = get(server, "/healthz", headers={"X-Padding": "a" * (MAX_HEAD_BYTES // 2)})

    assert refused.status_code == 431
    assert many.status_code == 431
    assert within.status_code == 200


def test_a_request_line_over_the_bound_is_414(serve: Callable[..., HealthServer]) -> None:
    server = serve()

    answer = raw_exchange(server, b"GET /" + b"a" * (2 * MAX_HEAD_BYTES) + b" HTTP/1.1\r\n\r\n")

    assert answer.startswith(b"HTTP/1.0 414 ")
    assert get(server, "/healthz").status_code == 200


def test_a_head_sent_without_end_is_cut_off_at_the_bound(
    serve: Callable[..., HealthServer],
) -> None:
    server = serve()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Endless: " + b"b" * 200_000

    answer = raw_exchange(server, head)

    assert answer.startswith(b"HTTP/1.0 431 ")


def test_an_idle_connection_is_closed_after_the_timeout(
    serve: Callable[..., HealthServer],
) -> None:
    server = serve(timeout_seconds=0.5)
    started = time.monotonic()

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle:
        answered = get(server, "/healthz")  # served while the idle one waits
        assert idle.recv(1024) == b""

    assert answered.status_code == 200
    assert time.monotonic() - started < 5


def test_stop_closes_the_port_and_may_be_called_twice(
    serve: Callable[..., HealthServer],
) -> None:
    server = serve()
    port = server.port

    server.stop()
    server.stop()

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(RuntimeError, match="not started"):
        server.port  # noqa: B018


def test_a_json_body_is_one_object(serve: Callable[..., HealthServer]) -> None:
    body = get(serve(), "/healthz").content

    assert isinstance(json.loads(body), dict)
