"""JSON from clients: nesting is bounded before parsing, in linear time, on bodies and on
``$skiptoken`` alike; a refused body is a 400 in the Graph envelope and changes nothing."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from industrydata.api.bounded_json import (
    MAX_JSON_DEPTH,
    JsonNestingError,
    nesting_depth,
    parse_json,
)
from industrydata.api.odata import _digest
from tests.api.conftest import FLOWS
from tests.api.test_error_shape import assert_graph_error

JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"1", 0),
        (b'"[[[{"', 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": "]]]"}]}', 3),
        (b'["\\"[[["]', 1),
        (b'["\\\\", [[]]]', 3),
        (b'"unterminated [[[', 0),
        (b"[" * 1000, 1000),
    ],
)
def test_nesting_depth_ignores_brackets_inside_strings(raw: bytes, depth: int) -> None:
    assert nesting_depth(raw) == depth


def test_parse_json_refuses_nesting_beyond_the_bound() -> None:
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    too_deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(JsonNestingError):
        parse_json(too_deep)


@pytest.mark.parametrize("raw", [b'{"a": "\xff"}', b"\xef\xbb\xbf{}", "{}".encode("utf-16")])
def test_parse_json_takes_utf8_only(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(raw)


def test_nesting_depth_is_linear_on_quote_and_backslash_floods() -> None:
    """Inputs that make a backtracking string pattern quadratic: one MiB each, well under a
    second (a quadratic scan of these takes hours)."""
    floods = [b'"' + b'\\"' * 500_000, b'"a\\' * 300_000, b'["' * 500_000, b"[" * 1_000_000]
    started = time.perf_counter()
    for raw in floods:
        nesting_depth(raw)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b"[" * 5_000 + b"]" * 5_000,
        b'{"a":' * 2_000 + b"1" + b"}" * 2_000,
        b'{"displayName": ' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}",
    ],
)
def test_deeply_nested_body_is_400(
    client: TestClient, admin: dict[str, str], flow: dict[str, Any], raw: bytes
) -> None:
    before = client.get(FLOWS, headers=admin).json()["value"]
    for method, path in (
        ("POST", FLOWS),
        ("PATCH", f"{FLOWS}/{flow['id']}"),
        ("POST", f"{FLOWS}/{flow['id']}/runs"),
        ("POST", f"{FLOWS}/{flow['id']}/invitation/accept"),
    ):
        response = client.request(method, path, content=raw, headers={**admin, **JSON_HEADERS})
        error = assert_graph_error(response, 400, "badRequest")
        assert str(MAX_JSON_DEPTH) in error["message"]
    assert client.get(FLOWS, headers=admin).json()["value"] == before


def test_integer_beyond_the_digit_limit_is_400(client: TestClient, admin: dict[str, str]) -> None:
    raw = b'{"displayName": ' + b"9" * 10_000 + b"}"
    response = client.post(FLOWS, content=raw, headers={**admin, **JSON_HEADERS})
    assert_graph_error(response, 400, "badRequest")


def test_forged_deep_skiptoken_is_400(client: TestClient, admin: dict[str, str]) -> None:
    """The skiptoken's digest is not a secret: a client can forge one around any payload."""
    payload = b'{"q": {}, "k": ' + b"[" * 5_000 + b"]" * 5_000 + b', "n": 0}'
    token = base64.urlsafe_b64encode(_digest(payload) + payload).decode().rstrip("=")
    response = client.get(FLOWS, params={"$skiptoken": token}, headers=admin)
    error = assert_graph_error(response, 400, "badRequest")
    assert error["target"] == "$skiptoken"
