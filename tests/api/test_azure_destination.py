"""Accepting an invitation with an Azure destination (api-contract §4): ``az://`` with a
connection string, or ``abfss://`` whose connection string names the blob endpoint, is probed
and the first run publishes a snapshot in the lake layout into the container. A plain-http
endpoint (Azurite) needs its origin in ``allowed_storage_endpoints``; a wrong key is a 422. The
credential never comes back in a response.

Outbound connections (issue 8 §1): a connection string that could be read two ways, an
endpoint that is neither listed nor a public Azure storage host resolving to public
addresses, is a 400 before any connection (real loopback servers count what reaches them);
what a storage server answers never comes back."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest
from azure.storage.blob import ContainerClient
from fastapi.testclient import TestClient

from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.lake import endpoints
from industrydata.service import Service
from tests.api.conftest import FLOWS, wait_for_run
from tests.conftest import Azurite
from tests.lake.servers import REMOTE_WORDS, counting_server, hostile_storage_server

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
    service.settings.allowed_storage_endpoints = [azurite.origin]
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
    assert response.json()["destination"] == {
        "url": destination_url,
        "format": "sdsCsv",
        "deltaOptions": None,
    }
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
    assert "not in the allowed storage endpoints" in error["message"]
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


def _accept_credential(  # type: ignore[no-untyped-def]
    client: TestClient, flow_id: str, headers: dict[str, str], url: str, credential: dict
):
    body = {
        "destination": {"url": url, "format": "sdsCsv", "credential": credential},
        "schedule": {"frequency": "none"},
    }
    return client.post(f"{FLOWS}/{flow_id}/invitation/accept", json=body, headers=headers)


def _assert_refused(response: Any, client: TestClient, flow_id: str, invitee: dict) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["innerError"]["code"] == "invalidDestination"
    assert _invitation_status(client, flow_id, invitee) == "pending"
    return str(error["message"])


@pytest.mark.parametrize(
    "template",
    [
        (
            "AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={origin}/devstoreaccount1;"
            " BlobEndpoint=https://devstoreaccount1.blob.core.windows.net"
        ),
        "AccountName=devstoreaccount1;AccountKey={key};BlobEndpo\u0131nt={origin}/devstoreaccount1",
        (
            "AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={origin}/devstoreaccount1;"
            "Foo=bar"
        ),
    ],
    ids=["duplicate-BlobEndpoint", "dotless-i-key", "unknown-key"],
)
def test_accept_connection_string_read_two_ways_is_400_and_contacts_nothing(
    client: TestClient,
    service: Service,
    flow: dict[str, Any],
    invitee: dict[str, str],
    template: str,
) -> None:
    with counting_server() as server:
        origin = f"http://127.0.0.1:{server.port}"
        connection_string = template.format(key=WRONG_KEY, origin=origin)
        response = _accept(client, flow["id"], invitee, "az://roster/lake", connection_string)

    _assert_refused(response, client, flow["id"], invitee)
    assert WRONG_KEY not in response.text
    assert str(server.port) not in response.text
    assert server.connections == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1:{port}/devstoreaccount1",
        "https://localhost:{port}/devstoreaccount1",
        "https://169.254.169.254/devstoreaccount1",
    ],
)
def test_accept_unlisted_https_endpoint_is_400_and_contacts_nothing(
    client: TestClient,
    service: Service,
    flow: dict[str, Any],
    invitee: dict[str, str],
    endpoint: str,
) -> None:
    """Only the listed origin is allowed; an open and a closed port answer alike."""
    messages = set()
    with counting_server() as server, counting_server() as listed:
        service.settings.allowed_storage_endpoints = [f"http://127.0.0.1:{listed.port}"]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            closed_port = closed.getsockname()[1]
        for port in (server.port, closed_port):
            connection_string = (
                f"AccountName=devstoreaccount1;AccountKey={WRONG_KEY};"
                f"BlobEndpoint={endpoint.format(port=port)}"
            )
            response = _accept(client, flow["id"], invitee, "az://roster/lake", connection_string)
            messages.add(_assert_refused(response, client, flow["id"], invitee))

    assert server.connections == [] and listed.connections == []
    assert len(messages) == 1


def test_accept_public_name_resolving_to_a_private_address_is_400(
    client: TestClient,
    flow: dict[str, Any],
    invitee: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resolver seam answers for the public name (no DNS look-up happens)."""
    answers = {"contosolake.blob.core.windows.net": ["10.0.0.4"]}
    monkeypatch.setattr(endpoints, "resolve", lambda host, port: answers[host])

    response = _accept_credential(
        client,
        flow["id"],
        invitee,
        "abfss://roster@contosolake.dfs.core.windows.net/lake",
        {"accountKey": WRONG_KEY},
    )

    assert "not public" in _assert_refused(response, client, flow["id"], invitee)
    assert "10.0.0.4" not in response.text


def test_accept_what_the_storage_server_answers_never_comes_back(
    client: TestClient,
    service: Service,
    flow: dict[str, Any],
    invitee: dict[str, str],
) -> None:
    with hostile_storage_server(403) as origin:
        service.settings.allowed_storage_endpoints = [origin]
        response = _accept(
            client,
            flow["id"],
            invitee,
            "az://roster/lake",
            f"AccountName=devstoreaccount1;AccountKey={WRONG_KEY};"
            f"BlobEndpoint={origin}/devstoreaccount1",
        )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "destinationUnreachable"
    assert REMOTE_WORDS not in response.text
    assert origin not in response.text
    assert WRONG_KEY not in response.text
    assert _invitation_status(client, flow["id"], invitee) == "pending"
