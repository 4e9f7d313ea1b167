"""The request head (request line and headers) is bounded by ``max_request_head_bytes`` in the
app as well as in the server's parser: 431 in the Graph envelope, before any other work."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from industrydata.config import Settings
from tests.api.conftest import FLOWS
from tests.api.test_error_shape import assert_graph_error, everything


def test_head_over_the_bound_is_431(
    client: TestClient, settings: Settings, admin: dict[str, str], flow: dict[str, Any]
) -> None:
    state = everything(client, admin)
    limit = settings.max_request_head_bytes
    cases = [
        client.get(FLOWS, headers={**admin, "X-Padding": "p" * limit}),
        client.get(FLOWS, headers={**admin, **{f"X-{n}": "p" * 100 for n in range(400)}}),
        client.get(FLOWS, params={"$filter": "x" * limit}, headers=admin),
        client.get(f"{FLOWS}/{'a' * limit}", headers=admin),
        client.patch(
            f"{FLOWS}/{flow['id']}",
            json={"displayName": "y"},
            headers={**admin, "Prefer": "p" * limit},
        ),
    ]
    for response in cases:
        error = assert_graph_error(response, 431, "requestHeaderFieldsTooLarge")
        assert str(limit) in error["message"]
    assert everything(client, admin) == state


def test_head_within_the_bound_is_served(
    client: TestClient, settings: Settings, admin: dict[str, str]
) -> None:
    padding = "p" * (settings.max_request_head_bytes // 2)
    assert client.get(FLOWS, headers={**admin, "X-Padding": padding}).status_code == 200
