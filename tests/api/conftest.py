"""API fixtures: a started service on the parametrised store, an in-process client, a tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from industrydata.api import create_app
from industrydata.config import Settings
from industrydata.service import Service
from tests.factories import TenantUsers, auth, make_tenant, wait_for

FLOWS = "/beta/industryData/dataShareOutgoingFlows"


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=store_url,
        scheduler_interval_seconds=3600,
        run_throttle_count=3,
    )


@pytest.fixture
def service(settings: Settings) -> Service:
    return Service(settings)


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service=service), base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def tenant(service: Service) -> TenantUsers:
    return make_tenant(service)


@pytest.fixture
def admin(service: Service, tenant: TenantUsers) -> dict[str, str]:
    """Headers of the tenant's first Global Administrator (default delegated scopes)."""
    return auth(service, tenant.tenant_id, tenant.admin)


@pytest.fixture
def invitee(service: Service, tenant: TenantUsers) -> dict[str, str]:
    """Headers of the second Global Administrator, the invitee of ``flow``."""
    return auth(service, tenant.tenant_id, tenant.second_admin)


def flow_body(tenant: TenantUsers, **overrides: Any) -> dict[str, Any]:
    body = {
        "@odata.type": "#microsoft.graph.industryData.dataShareOutgoingFlow",
        "displayName": "Roster to the district lake",
        "shareName": "district-lake",
        "inviteeUserIds": [tenant.second_admin],
    }
    body.update(overrides)
    return body


@pytest.fixture
def flow(client: TestClient, tenant: TenantUsers, admin: dict[str, str]) -> dict[str, Any]:
    response = client.post(FLOWS, json=flow_body(tenant), headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def accept_body(settings: Settings, folder: str = "export", **destination: Any) -> dict[str, Any]:
    target = settings.lake_dir / folder
    return {
        "destination": {"url": target.as_uri(), "format": "sdsCsv", **destination},
        "schedule": {"frequency": "daily", "timeOfDay": "05:30"},
    }


def wait_for_run(
    client: TestClient, flow_id: str, run_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    """The run once it has left ``running``."""

    def finished() -> dict[str, Any] | None:
        run = client.get(f"{FLOWS}/{flow_id}/runs/{run_id}", headers=headers).json()
        return run if run["status"] != "running" else None

    return wait_for(finished)


@pytest.fixture
def ready_flow(
    client: TestClient, settings: Settings, flow: dict[str, Any], invitee: dict[str, str]
) -> dict[str, Any]:
    """A flow whose invitation is accepted and whose first run has finished."""
    response = client.post(
        f"{FLOWS}/{flow['id']}/invitation/accept", json=accept_body(settings), headers=invitee
    )
    assert response.status_code == 200, response.text
    first = client.get(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()["value"][0]
    assert wait_for_run(client, flow["id"], first["id"], invitee)["status"] == "completed"
    return flow
