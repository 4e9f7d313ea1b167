"""Accepting an invitation with an Azure destination (api-contract §4): ``az://`` with a
connection string, or ``abfss://`` whose connection string names the blob endpoint, is probed
and the first run publishes a snapshot in the lake layout into the container. A plain-http
endpoint (Azurite) needs its origin in ``allowed_http_endpoints``; a wrong key is a 422. The
credential never comes back in a response."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from azure.storage.blob import ContainerClient
from fastapi.testclient import TestClient

from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.service import Service
from tests.api.conftest import FLOWS, wait_for_run
from tests.conftest import Azurite

pytestmark = pytest.mark.azurite

WRONG_KEY = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5"


def _accept(client: TestClient, flow_id: str, headers: dict[str, str], url: str, cs: str):  # type: ignore[no-untyped-def]
    body = {
        "destination": {"url": url, "format": "sdsCsv", "credential": {"connectionString": cs}},
        "schedule": {"frequency": "none"},
    }
    return client.post(f"{FLOWS}/{flow_id}/invitation/accept", json=body, headers=headers)


def _invitation_status(client: TestClient, flow_id: str, headers: dict[str, str]) -> str:
    return client.get(f"{FLOWS}/{flow_id}/invitation", headers=headers).json()["status"]


@pytest.fixture
def allow_azurite(service: Service, azurite: Azurite) -> Azurite:
    service.settings.allowed_http_endpoints = [azurite.origin]
    return azurite


@pytest.mark.parametrize(
    "url",
    ["az://{container}/lake", "abfss://{container}@devstoreaccount1.dfs.core.windows.net/lake"],
)
def test_accept_azure_destination_first_run_publishes_the_layout(
    client: TestClient,
    flow: dict[str, Any],
    invitee: dict[str, str],
    allow_azurite: Azurite,
    azure_container: str,
    url: str,
) -> None:
    destination_url = url.format(container=azure_container)

    response = _accept(
        client, flow["id"], invitee, destination_url, allow_azurite.connection_string
    )

    assert response.status_code == 200, response.text
    assert response.json()["destination"] == {"url": destination_url, "format": "sdsCsv"}
    assert allow_azurite.account_key not in response.text
    runs = client.get(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()["value"]
    run = wait_for_run(client, flow["id"], runs[0]["id"], invitee)
    assert run["status"] == "completed", run
    assert allow_azurite.account_key not in json.dumps(run)
    _assert_published(
        ContainerClient.from_connection_string(allow_azurite.connection_string, azure_container),
        run["statistics"]["snapshotId"],
    )


def _assert_published(container: ContainerClient, snapshot_id: str) -> None:
    """Follow the manifests from the root, as a lake reader does (docs/lake-layout.md)."""

    def document(path: str) -> dict[str, Any]:
        return json.loads(container.download_blob(f"lake/{path}").readall())

    names = {blob.name for blob in container.list_blobs(name_starts_with="lake/")}
    root = document("current.manifest.cdm.json")
    roster_path = root["subManifests"][0]["definition"].removeprefix("local:/")
    roster = document(roster_path)
    snapshot_path = roster["subManifests"][0]["definition"].removeprefix("local:/")
    assert snapshot_path == f"roster/{snapshot_id}/snapshot.roster.manifest.cdm.json"
    snapshot = document(snapshot_path)
    assert [entity["entityName"] for entity in snapshot["entities"]] == sorted(
        table.name for table in CANONICAL_TABLES
    )
    for entity in snapshot["entities"]:
        pattern = entity["dataPartitionPatterns"][0]
        folder = "lake/" + pattern["rootLocation"].removeprefix("local:/") + "/"
        parts = [name for name in names if name.startswith(folder)]
        assert len(parts) == 1, (entity["entityName"], parts)
        assert re.search(pattern["regularExpression"], parts[0].removeprefix(folder[:-1]))
    assert "lake/schema/roster.v0.3.2.cdm.json" in names


def test_accept_plain_http_endpoint_not_allowed_is_400_and_stays_pending(
    client: TestClient,
    flow: dict[str, Any],
    invitee: dict[str, str],
    azurite: Azurite,
    azure_container: str,
) -> None:
    response = _accept(
        client, flow["id"], invitee, f"az://{azure_container}/lake", azurite.connection_string
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["innerError"]["code"] == "invalidDestination"
    assert "not https" in error["message"]
    assert azurite.account_key not in response.text
    assert _invitation_status(client, flow["id"], invitee) == "pending"


def test_accept_wrong_account_key_is_422_and_stays_pending(
    client: TestClient,
    flow: dict[str, Any],
    invitee: dict[str, str],
    allow_azurite: Azurite,
    azure_container: str,
) -> None:
    connection_string = allow_azurite.connection_string.replace(
        allow_azurite.account_key, WRONG_KEY
    )

    response = _accept(
        client, flow["id"], invitee, f"az://{azure_container}/lake", connection_string
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "destinationUnreachable"
    assert WRONG_KEY not in response.text
    assert _invitation_status(client, flow["id"], invitee) == "pending"
    assert (
        list(
            ContainerClient.from_connection_string(
                allow_azurite.connection_string, azure_container
            ).list_blobs()
        )
        == []
    )
