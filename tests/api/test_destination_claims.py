"""A destination belongs to the first flow that accepted it, until that flow is deleted.

Another flow of the same tenant gets 409 ``destinationInUse``; a flow of another tenant gets a
400 that does not tell another tenant holds it. Folders one inside another count as the same
destination, however the URL spells them; siblings that only share a string prefix do not.
A run writes only to the folder claimed at accept, even if a link later redirects its URL.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from industrydata.config import Settings
from industrydata.service import Service
from tests.api.conftest import FLOWS, accept_body, flow_body, wait_for_run
from tests.conftest import Azurite
from tests.factories import TenantUsers, auth, make_tenant

CANNOT_BE_USED = "This destination cannot be used; choose another folder or prefix."


def _new_flow(client: TestClient, tenant: TenantUsers, admin: dict[str, str], name: str) -> str:
    response = client.post(FLOWS, json=flow_body(tenant, shareName=name), headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _accept(client: TestClient, flow_id: str, headers: dict[str, str], body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post(f"{FLOWS}/{flow_id}/invitation/accept", json=body, headers=headers)


def _local(url: str) -> dict[str, Any]:
    return {"destination": {"url": url, "format": "sdsCsv"}, "schedule": {"frequency": "none"}}


def _first_run(client: TestClient, flow_id: str, headers: dict[str, str]) -> dict[str, Any]:
    runs = client.get(f"{FLOWS}/{flow_id}/runs", headers=headers).json()["value"]
    return wait_for_run(client, flow_id, runs[0]["id"], headers)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def other_flow(client: TestClient, tenant: TenantUsers, admin: dict[str, str]) -> str:
    return _new_flow(client, tenant, admin, "second-share")


@pytest.mark.parametrize(
    ("first", "second"),
    [("shared", "shared"), ("parent", "parent/child"), ("outer/inner", "outer")],
    ids=["same", "nested-inside", "nested-around"],
)
def test_same_tenant_overlap_is_409(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    other_flow: str,
    invitee: dict[str, str],
    first: str,
    second: str,
) -> None:
    assert _accept(client, flow["id"], invitee, accept_body(settings, first)).status_code == 200

    response = _accept(client, other_flow, invitee, accept_body(settings, second))

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "destinationInUse"
    assert client.get(f"{FLOWS}/{other_flow}/invitation", headers=invitee).json()["status"] == (
        "pending"
    )
    assert client.get(f"{FLOWS}/{other_flow}/runs", headers=invitee).json()["value"] == []


def test_a_refused_accept_makes_no_folder_inside_the_claimed_destination(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    other_flow: str,
    invitee: dict[str, str],
) -> None:
    assert _accept(client, flow["id"], invitee, accept_body(settings, "held")).status_code == 200
    _first_run(client, flow["id"], invitee)
    before = sorted(path.relative_to(settings.lake_dir) for path in settings.lake_dir.rglob("*"))

    response = _accept(client, other_flow, invitee, accept_body(settings, "held/inside/deeper"))

    assert response.status_code == 409, response.text
    after = sorted(path.relative_to(settings.lake_dir) for path in settings.lake_dir.rglob("*"))
    assert after == before


def test_siblings_sharing_a_string_prefix_do_not_conflict(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    other_flow: str,
    invitee: dict[str, str],
) -> None:
    assert _accept(client, flow["id"], invitee, accept_body(settings, "a")).status_code == 200

    response = _accept(client, other_flow, invitee, accept_body(settings, "ab"))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("spelling", ["{lake}/x/../shared", "{lake}//shared/", "{lake}/alias"])
def test_any_spelling_of_a_claimed_folder_conflicts(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    other_flow: str,
    invitee: dict[str, str],
    spelling: str,
) -> None:
    assert _accept(client, flow["id"], invitee, accept_body(settings, "shared")).status_code == 200
    (settings.lake_dir / "alias").symlink_to(settings.lake_dir / "shared")

    url = "file://" + spelling.format(lake=settings.lake_dir)
    response = _accept(client, other_flow, invitee, _local(url))

    assert response.status_code == 409, response.text


def test_another_tenant_gets_400_that_does_not_reveal_the_owner(
    client: TestClient,
    service: Service,
    settings: Settings,
    flow: dict[str, Any],
    invitee: dict[str, str],
) -> None:
    owned = settings.lake_dir / "district" / "tenant-a"
    assert _accept(client, flow["id"], invitee, _local(owned.as_uri())).status_code == 200
    assert _first_run(client, flow["id"], invitee)["status"] == "completed"
    before = _files(owned)
    intruder = make_tenant(service)
    intruder_admin = auth(service, intruder.tenant_id, intruder.admin)
    intruder_invitee = auth(service, intruder.tenant_id, intruder.second_admin)
    intruder_flow = _new_flow(client, intruder, intruder_admin, "district-lake")

    responses = [
        _accept(client, intruder_flow, intruder_invitee, accept_body(settings, folder))
        for folder in ("district/tenant-a", "district/tenant-a/roster", "district")
    ]

    for response in responses:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["message"] == CANNOT_BE_USED
        assert error["innerError"]["code"] == "invalidDestination"
        assert flow["id"] not in response.text and "tenant" not in response.text.lower()
    assert _files(owned) == before
    runs = client.get(f"{FLOWS}/{intruder_flow}/runs", headers=intruder_invitee).json()
    assert runs["value"] == []


def test_an_allowed_root_itself_cannot_be_claimed(
    client: TestClient, settings: Settings, flow: dict[str, Any], invitee: dict[str, str]
) -> None:
    response = _accept(client, flow["id"], invitee, _local(settings.lake_dir.as_uri()))

    assert response.status_code == 400
    assert "not the root itself" in response.json()["error"]["message"]


def test_deleting_the_flow_releases_its_destination(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    other_flow: str,
    admin: dict[str, str],
    invitee: dict[str, str],
) -> None:
    assert _accept(client, flow["id"], invitee, accept_body(settings, "shared")).status_code == 200
    _first_run(client, flow["id"], invitee)
    assert client.delete(f"{FLOWS}/{flow['id']}", headers=admin).status_code == 204

    response = _accept(client, other_flow, invitee, accept_body(settings, "shared"))

    assert response.status_code == 200, response.text


def test_a_resent_flow_keeps_its_destination_and_may_accept_it_again(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    other_flow: str,
    admin: dict[str, str],
    invitee: dict[str, str],
) -> None:
    assert _accept(client, flow["id"], invitee, accept_body(settings, "shared")).status_code == 200
    _first_run(client, flow["id"], invitee)
    assert client.post(f"{FLOWS}/{flow['id']}/invitation/resend", headers=admin).status_code == 200

    taken = _accept(client, other_flow, invitee, accept_body(settings, "shared"))
    again = _accept(client, flow["id"], invitee, accept_body(settings, "shared/inner"))
    freed = _accept(client, other_flow, invitee, accept_body(settings, "shared"))

    assert taken.status_code == 409
    assert again.status_code == 200, again.text
    assert freed.status_code == 409  # the flow moved its claim inside, which still overlaps


def test_moving_to_another_destination_releases_the_old_one(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    other_flow: str,
    admin: dict[str, str],
    invitee: dict[str, str],
) -> None:
    assert _accept(client, flow["id"], invitee, accept_body(settings, "old")).status_code == 200
    _first_run(client, flow["id"], invitee)
    client.post(f"{FLOWS}/{flow['id']}/invitation/resend", headers=admin)
    assert _accept(client, flow["id"], invitee, accept_body(settings, "new")).status_code == 200

    response = _accept(client, other_flow, invitee, accept_body(settings, "old"))

    assert response.status_code == 200, response.text


def test_a_run_refuses_a_destination_redirected_by_a_link(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    other_flow: str,
    admin: dict[str, str],
    invitee: dict[str, str],
) -> None:
    """The claimed folder replaced by a link to another flow's folder (inside the allowed
    roots): the run fails and writes nothing there."""
    assert _accept(client, flow["id"], invitee, accept_body(settings, "mine")).status_code == 200
    assert _first_run(client, flow["id"], invitee)["status"] == "completed"
    assert _accept(client, other_flow, invitee, accept_body(settings, "theirs")).status_code == 200
    assert _first_run(client, other_flow, invitee)["status"] == "completed"
    theirs = _files(settings.lake_dir / "theirs")
    shutil.rmtree(settings.lake_dir / "mine")
    (settings.lake_dir / "mine").symlink_to(settings.lake_dir / "theirs")

    run = client.post(f"{FLOWS}/{flow['id']}/runs", headers=admin).json()
    finished = wait_for_run(client, flow["id"], run["id"], admin)

    assert finished["status"] == "failed"
    assert "no longer the folder accepted" in json.dumps(finished["blockingError"])
    assert _files(settings.lake_dir / "theirs") == theirs


def test_a_run_refuses_a_link_planted_inside_its_destination(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    admin: dict[str, str],
    invitee: dict[str, str],
    tmp_path: Path,
) -> None:
    assert _accept(client, flow["id"], invitee, accept_body(settings, "mine")).status_code == 200
    assert _first_run(client, flow["id"], invitee)["status"] == "completed"
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(settings.lake_dir / "mine" / "roster")
    (settings.lake_dir / "mine" / "roster").symlink_to(outside)

    run = client.post(f"{FLOWS}/{flow['id']}/runs", headers=admin).json()
    finished = wait_for_run(client, flow["id"], run["id"], admin)

    assert finished["status"] == "failed"
    assert "'roster' in the destination is a symbolic link" in json.dumps(
        finished["blockingError"]
    )
    assert list(outside.iterdir()) == []


# Blob destinations: the claim is the container at its endpoint and the prefix.


@pytest.fixture
def allow_azurite(service: Service, azurite: Azurite) -> Azurite:
    service.settings.allowed_storage_endpoints = [azurite.origin]
    return azurite


def _blob(url: str, azurite: Azurite) -> dict[str, Any]:
    return {
        "destination": {
            "url": url,
            "format": "sdsCsv",
            "credential": {"connectionString": azurite.connection_string},
        },
        "schedule": {"frequency": "none"},
    }


@pytest.mark.azurite
@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        ("az://{c}/lake/a", "az://{c}/lake/b", 200),
        ("az://{c}/lake/a", "az://{c}/lake/ab", 200),
        ("az://{c}/lake", "az://{c}/lake/a", 409),
        ("az://{c}/lake/a", "az://{c}", 409),
        ("az://{c}/lake", "abfss://{c}@devstoreaccount1.dfs.core.windows.net/lake/", 409),
    ],
    ids=["two-prefixes", "string-prefix", "nested-inside", "container-around", "abfss-spelling"],
)
def test_blob_prefixes_are_claimed_like_folders(
    client: TestClient,
    flow: dict[str, Any],
    other_flow: str,
    invitee: dict[str, str],
    allow_azurite: Azurite,
    azure_container: str,
    first: str,
    second: str,
    status: int,
) -> None:
    first_url, second_url = (url.format(c=azure_container) for url in (first, second))
    assert _accept(client, flow["id"], invitee, _blob(first_url, allow_azurite)).status_code == 200

    response = _accept(client, other_flow, invitee, _blob(second_url, allow_azurite))

    assert response.status_code == status, response.text
