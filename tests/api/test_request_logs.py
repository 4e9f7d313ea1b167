"""Log lines written while a request is served carry its request id (sync and async routes,
the unexpected-error handler), and the id is gone once the request is answered."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from industrydata.api import create_app
from industrydata.observability import JsonFormatter, current_log_ids
from industrydata.service import Service

ROUTE_LOGGER = "industrydata.tests.route"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """JSON lines of the route's logger and of the API's error handler, formatted as written."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(name) for name in (ROUTE_LOGGER, "industrydata.api.errors")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture
def logging_client(service: Service) -> Iterator[TestClient]:
    """The app with three routes of the test's own: two that log, one that fails."""
    app = create_app(service=service)

    def sync_route() -> dict[str, str]:
        logging.getLogger(ROUTE_LOGGER).info("sync route")
        return {}

    async def async_route() -> dict[str, str]:
        logging.getLogger(ROUTE_LOGGER).info("async route")
        return {}

    def failing_route() -> None:
        raise RuntimeError("broken route")

    app.add_api_route("/test/sync", sync_route)
    app.add_api_route("/test/async", async_route)
    app.add_api_route("/test/failing", failing_route)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def entries(buffer: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.parametrize("path", ["/test/sync", "/test/async"])
def test_a_line_written_while_serving_carries_the_request_id(
    logging_client: TestClient, json_log: io.StringIO, path: str
) -> None:
    first = logging_client.get(path)
    second = logging_client.get(path)

    lines = entries(json_log)
    assert [line["request_id"] for line in lines] == [
        first.headers["request-id"],
        second.headers["request-id"],
    ]
    assert first.headers["request-id"] != second.headers["request-id"]
    assert current_log_ids() == {}


def test_the_unexpected_error_line_carries_the_request_id(
    logging_client: TestClient, json_log: io.StringIO
) -> None:
    response = logging_client.get("/test/failing")

    assert response.status_code == 500
    (line,) = entries(json_log)
    assert line["logger"] == "industrydata.api.errors"
    assert line["request_id"] == response.headers["request-id"]
    assert "RuntimeError: broken route" in line["exception"]
