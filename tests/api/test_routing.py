"""Paths and methods: key-in-parentheses addressing reaches the same resources as the segment
form, a wrong method is a 405 whose ``Allow`` lists every method of the resource, OPTIONS
answers with that ``Allow``, and a trailing slash is served, never redirected."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from industrydata.api.routing import canonical_path
from industrydata.errors import BadRequest
from tests.api.conftest import FLOWS, accept_body, wait_for_run
from tests.api.test_error_shape import assert_graph_error, everything

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
INVITEES = f"{FLOWS}/getPotentialDataShareInvitees"


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/a/flows('x')", "/a/flows/x"),
        ("/a/flows('x')/runs('y')/z", "/a/flows/x/runs/y/z"),
        ("/a/flows('it''s')", "/a/flows/it's"),
        (f"/a/flows({GUID})", f"/a/flows/{GUID}"),
        ("/a/getPotentialDataShareInvitees()", "/a/getPotentialDataShareInvitees()"),
        ("/a/flows('x'", "/a/flows('x'"),
        ("/a/flows/", "/a/flows"),
        ("/", "/"),
    ],
)
def test_canonical_path(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical


@pytest.mark.parametrize("segment", ["flows(x)", "flows('')", "flows('a'b')", "flows(1,2)"])
def test_canonical_path_refuses_malformed_keys(segment: str) -> None:
    with pytest.raises(BadRequest):
        canonical_path(f"/a/{segment}")


@pytest.mark.parametrize(
    "form",
    [
        lambda key: f"('{key}')",
        lambda key: f"({key})",
        lambda key: quote(f"('{key}')", safe=""),
    ],
    ids=["quoted", "bare-guid", "percent-encoded"],
)
def test_key_in_parentheses_reads_like_the_segment_form(
    client: TestClient, admin: dict[str, str], flow: dict[str, Any], form: Any
) -> None:
    flow_id = flow["id"]
    by_segment = client.get(f"{FLOWS}/{flow_id}", headers=admin)
    by_key = client.get(f"{FLOWS}{form(flow_id)}", headers=admin)
    assert by_key.status_code == 200, by_key.text
    assert by_key.json() == by_segment.json()
    for suffix in ("/invitation", "/runs"):
        keyed = client.get(f"{FLOWS}{form(flow_id)}{suffix}", headers=admin)
        assert keyed.status_code == 200, keyed.text
        assert keyed.json() == client.get(f"{FLOWS}/{flow_id}{suffix}", headers=admin).json()


def test_key_in_parentheses_everywhere_the_segment_form_works(
    client: TestClient,
    settings: Any,
    admin: dict[str, str],
    invitee: dict[str, str],
    flow: dict[str, Any],
) -> None:
    keyed_flow = f"{FLOWS}('{flow['id']}')"
    accepted = client.post(
        f"{keyed_flow}/invitation/accept", json=accept_body(settings), headers=invitee
    )
    assert accepted.status_code == 200, accepted.text
    (first,) = client.get(f"{keyed_flow}/runs", headers=admin).json()["value"]
    wait_for_run(client, flow["id"], first["id"], admin)
    run = client.get(f"{keyed_flow}/runs('{first['id']}')", headers=admin)
    assert run.status_code == 200, run.text
    by_segment = client.get(f"{FLOWS}/{flow['id']}/runs/{first['id']}", headers=admin)
    assert run.json() == by_segment.json()

    renamed = client.patch(keyed_flow, json={"displayName": "Renamed"}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert client.get(f"{FLOWS}/{flow['id']}", headers=admin).json()["displayName"] == "Renamed"
    assert client.delete(keyed_flow, headers=admin).status_code == 204
    assert client.get(f"{FLOWS}/{flow['id']}", headers=admin).status_code == 404


def test_missing_and_malformed_keys_answer_like_the_segment_form(
    client: TestClient, admin: dict[str, str], flow: dict[str, Any]
) -> None:
    state = everything(client, admin)
    missing = uuid.uuid4()
    assert_graph_error(client.get(f"{FLOWS}('{missing}')", headers=admin), 404, "itemNotFound")
    assert_graph_error(client.get(f"{FLOWS}('it''s')", headers=admin), 404, "itemNotFound")
    assert_graph_error(
        client.get(f"{FLOWS}('{flow['id']}')/runs('{missing}')", headers=admin),
        404,
        "itemNotFound",
    )
    for malformed in (f"{FLOWS}(not-a-key)", f"{FLOWS}('')", f"{FLOWS}('{flow['id']}'x)"):
        assert_graph_error(client.delete(malformed, headers=admin), 400, "badRequest")
    assert everything(client, admin) == state


def test_function_call_with_parentheses_still_works(
    client: TestClient, admin: dict[str, str]
) -> None:
    plain = client.get(INVITEES, headers=admin)
    called = client.get(f"{INVITEES}()", headers=admin)
    assert plain.status_code == called.status_code == 200
    assert plain.json() == called.json()
    assert len(plain.json()["value"]) == 2


ALLOW = [
    ("PUT", "{flows}", "GET, OPTIONS, POST"),
    ("DELETE", "{flows}", "GET, OPTIONS, POST"),
    ("PUT", "{flows}/{flow}", "DELETE, GET, OPTIONS, PATCH"),
    ("POST", "{flows}/{flow}", "DELETE, GET, OPTIONS, PATCH"),
    ("PUT", "{flows}('{flow}')", "DELETE, GET, OPTIONS, PATCH"),
    ("PATCH", "{flows}/{flow}/runs", "GET, OPTIONS, POST"),
    ("DELETE", "{flows}/{flow}/runs/{flow}", "GET, OPTIONS"),
    ("GET", "{flows}/{flow}/invitation/accept", "OPTIONS, POST"),
    ("POST", "{flows}/{flow}/invitation", "GET, OPTIONS"),
    ("PATCH", "{flows}/getPotentialDataShareInvitees", "GET, OPTIONS"),
    ("DELETE", "{flows}/getPotentialDataShareInvitees", "GET, OPTIONS"),
    ("POST", "{flows}/getPotentialDataShareInvitees()", "GET, OPTIONS"),
    ("PATCH", "{flows}/getPotentialDataShareInvitees()", "GET, OPTIONS"),
    ("POST", "/beta/industryData", "GET, OPTIONS"),
    ("POST", "/beta/$metadata", "GET, OPTIONS"),
]


@pytest.mark.parametrize(("method", "path", "allow"), ALLOW)
def test_wrong_method_is_405_listing_every_allowed_method(
    client: TestClient,
    admin: dict[str, str],
    flow: dict[str, Any],
    method: str,
    path: str,
    allow: str,
) -> None:
    state = everything(client, admin)
    url = path.format(flows=FLOWS, flow=flow["id"])
    response = client.request(method, url, json={"displayName": "x"}, headers=admin)
    assert_graph_error(response, 405, "methodNotAllowed")
    assert response.headers["allow"] == allow
    assert everything(client, admin) == state


@pytest.mark.parametrize(("path", "allow"), sorted({(path, allow) for _, path, allow in ALLOW}))
def test_options_answers_204_with_allow(
    client: TestClient, flow: dict[str, Any], path: str, allow: str
) -> None:
    response = client.options(path.format(flows=FLOWS, flow=flow["id"]))
    assert response.status_code == 204
    assert response.headers["allow"] == allow
    assert response.headers["request-id"]
    assert response.content == b""


def test_options_on_an_unknown_path_is_404(client: TestClient) -> None:
    assert_graph_error(client.options("/beta/nothing-here"), 404, "itemNotFound")


@pytest.mark.parametrize("path", [f"{FLOWS}/", "/beta/", f"{INVITEES}/"])
def test_trailing_slash_is_served_not_redirected(
    client: TestClient, admin: dict[str, str], flow: dict[str, Any], path: str
) -> None:
    response = client.get(path, headers={**admin, "Host": "attacker.example"})
    assert response.status_code == 200, response.text
    assert "location" not in response.headers
    assert response.json() == client.get(path.rstrip("/"), headers=admin).json()
