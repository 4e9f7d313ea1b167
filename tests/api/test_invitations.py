"""Invitations: only the invitee answers, only while pending; accepting maps a destination,
probes it, and starts the first run, which writes a snapshot in the chosen format (contract §3,
§4 rows 10–13)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.config import Settings
from industrydata.service import Service
from tests.api.conftest import FLOWS, accept_body, wait_for_run
from tests.factories import TenantUsers


def _accept(client: TestClient, flow_id: str, headers: dict[str, str], body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post(f"{FLOWS}/{flow_id}/invitation/accept", json=body, headers=headers)


def test_accept_maps_destination_and_first_run_writes_snapshot(
    client: TestClient, settings: Settings, flow: dict[str, Any], invitee: dict[str, str]
) -> None:
    response = _accept(client, flow["id"], invitee, accept_body(settings))

    assert response.status_code == 200
    invitation = response.json()
    assert invitation["status"] == "accepted"
    assert invitation["destination"] == {
        "url": (settings.lake_dir / "export").as_uri(),
        "format": "sdsCsv",
        "deltaOptions": None,
    }
    assert invitation["schedule"] == {"frequency": "daily", "timeOfDay": "05:30"}
    assert "credential" not in json.dumps(invitation)
    runs = client.get(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()["value"]
    assert len(runs) == 1
    run = wait_for_run(client, flow["id"], runs[0]["id"], invitee)
    assert run["status"] == "completed", run
    assert run["statistics"]["progressPercent"] == 100
    assert len(run["statistics"]["tables"]) == 26
    snapshot = settings.lake_dir / "export" / "roster" / run["statistics"]["snapshotId"]
    assert (snapshot / "snapshot.roster.manifest.cdm.json").is_file()
    assert len([path for path in snapshot.iterdir() if path.is_dir()]) == 26
    refreshed = client.get(f"{FLOWS}/{flow['id']}", headers=invitee).json()
    assert (refreshed["readinessStatus"], refreshed["sharingState"]) == ("ready", "running")


def test_accept_by_someone_else_is_forbidden(
    client: TestClient, settings: Settings, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    response = _accept(client, flow["id"], admin, accept_body(settings))

    assert response.status_code == 403
    assert (
        client.get(f"{FLOWS}/{flow['id']}/invitation", headers=admin).json()["status"] == "pending"
    )


def test_accept_twice_conflicts(
    client: TestClient, settings: Settings, flow: dict[str, Any], invitee: dict[str, str]
) -> None:
    assert _accept(client, flow["id"], invitee, accept_body(settings)).status_code == 200

    response = _accept(client, flow["id"], invitee, accept_body(settings, "other"))

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invitationNotPending"


def test_reject_sets_flow_failed_problem(
    client: TestClient, flow: dict[str, Any], invitee: dict[str, str]
) -> None:
    response = client.post(f"{FLOWS}/{flow['id']}/invitation/reject", headers=invitee)

    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    body = client.get(f"{FLOWS}/{flow['id']}", headers=invitee).json()
    assert (body["readinessStatus"], body["sharingState"]) == ("failed", "problem")


def test_resend_issues_a_new_pending_invitation(
    client: TestClient, flow: dict[str, Any], admin: dict[str, str], invitee: dict[str, str]
) -> None:
    client.post(f"{FLOWS}/{flow['id']}/invitation/reject", headers=invitee)

    response = client.post(f"{FLOWS}/{flow['id']}/invitation/resend", headers=admin)

    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    body = client.get(f"{FLOWS}/{flow['id']}", headers=admin).json()
    assert (body["readinessStatus"], body["sharingState"]) == ("notReady", "pending")


def test_accept_outside_allowed_roots_is_refused(
    client: TestClient,
    tmp_path,
    flow: dict[str, Any],
    invitee: dict[str, str],  # type: ignore[no-untyped-def]
) -> None:
    body = {"destination": {"url": (tmp_path / "elsewhere").as_uri()}}

    response = _accept(client, flow["id"], invitee, body)

    assert response.status_code == 400
    assert (
        client.get(f"{FLOWS}/{flow['id']}/invitation", headers=invitee).json()["status"]
        == "pending"
    )


def test_accept_into_configured_extra_root(
    client: TestClient,
    service: Service,
    tmp_path,
    flow: dict[str, Any],
    invitee: dict[str, str],  # type: ignore[no-untyped-def]
) -> None:
    extra = (tmp_path / "extra-root").resolve()
    extra.mkdir()
    service.settings.local_destination_roots = [extra]

    response = _accept(
        client, flow["id"], invitee, {"destination": {"url": (extra / "lake").as_uri()}}
    )

    assert response.status_code == 200, response.text


def test_accept_unreachable_destination_is_422_and_stays_pending(
    client: TestClient, settings: Settings, flow: dict[str, Any], invitee: dict[str, str]
) -> None:
    blocker = settings.lake_dir / "a-file"
    blocker.write_text("not a folder")

    response = _accept(
        client, flow["id"], invitee, {"destination": {"url": (blocker / "sub").as_uri()}}
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "destinationUnreachable"
    assert (
        client.get(f"{FLOWS}/{flow['id']}/invitation", headers=invitee).json()["status"]
        == "pending"
    )


def test_invitee_losing_global_admin_fails_next_run(
    client: TestClient,
    service: Service,
    settings: Settings,
    tenant: TenantUsers,
    flow: dict[str, Any],
    admin: dict[str, str],
    invitee: dict[str, str],
) -> None:
    from industrydata.directory import add_user

    _accept(client, flow["id"], invitee, accept_body(settings))
    first = client.get(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()["value"][0]
    wait_for_run(client, flow["id"], first["id"], invitee)
    with service.store.writing() as session:
        add_user(
            session,
            tenant_id=tenant.tenant_id,
            object_id=tenant.second_admin,
            display_name="Adam Admin",
        )
        session.commit()

    run = client.post(f"{FLOWS}/{flow['id']}/runs", headers=admin).json()
    finished = wait_for_run(client, flow["id"], run["id"], admin)

    assert finished["status"] == "failed"
    assert finished["blockingError"]["code"] == "inviteeNotAuthorized"
    body = client.get(f"{FLOWS}/{flow['id']}", headers=admin).json()
    assert (body["readinessStatus"], body["sharingState"]) == ("failed", "problem")


def test_unanswered_invitation_expires(
    client: TestClient,
    service: Service,
    settings: Settings,
    flow: dict[str, Any],
    invitee: dict[str, str],
) -> None:
    from datetime import timedelta

    from industrydata.runs import utcnow
    from industrydata.sharing import expire_pending_invitations

    later = utcnow() + timedelta(days=settings.invitation_lifetime_days, seconds=1)
    assert expire_pending_invitations(service.store, now=later) == 1

    body = client.get(f"{FLOWS}/{flow['id']}?$expand=invitation", headers=invitee).json()
    assert (body["readinessStatus"], body["sharingState"]) == ("expired", "pending")
    assert body["invitation"]["status"] == "expired"
    response = _accept(client, flow["id"], invitee, accept_body(settings))
    assert response.status_code == 409


def test_delete_flow_removes_invitation_and_runs_but_keeps_delivered_data(
    client: TestClient, settings: Settings, flow: dict[str, Any], invitee: dict[str, str]
) -> None:
    _accept(client, flow["id"], invitee, accept_body(settings))
    run = client.get(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()["value"][0]
    wait_for_run(client, flow["id"], run["id"], invitee)

    assert client.delete(f"{FLOWS}/{flow['id']}", headers=invitee).status_code == 204

    assert client.get(f"{FLOWS}/{flow['id']}/invitation", headers=invitee).status_code == 404
    assert (settings.lake_dir / "export" / "roster" / "current.roster.manifest.cdm.json").is_file()


@pytest.mark.parametrize("format", ["parquet", "delta"])
def test_accept_with_format_runs_export_in_that_format(
    client: TestClient,
    service: Service,
    settings: Settings,
    tenant: TenantUsers,
    flow: dict[str, Any],
    invitee: dict[str, str],
    tmp_path: Path,
    format: str,
) -> None:
    generate_sds_csv(tmp_path / "drop", students=20, seed=4)
    loaded = load_sds_csv(service.store.write_engine, tmp_path / "drop", tenant_id=tenant.tenant_id)

    response = _accept(client, flow["id"], invitee, accept_body(settings, format=format))

    assert response.status_code == 200
    assert response.json()["destination"]["format"] == format
    first = client.get(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()["value"][0]
    run = wait_for_run(client, flow["id"], first["id"], invitee)
    assert run["status"] == "completed", run
    statistics = run["statistics"]
    assert statistics["format"] == format
    person = next(table for table in statistics["tables"] if table["name"] == "Person")
    assert person["rowsRead"] == person["rowsWritten"] == loaded.rows["Person"]
    lake = settings.lake_dir / "export"
    if format == "parquet":
        (part,) = (lake / "roster" / statistics["snapshotId"] / "Person").iterdir()
        assert pq.read_table(part).num_rows == loaded.rows["Person"]
        return
    assert statistics["snapshotId"] == "0"
    assert DeltaTable(str(lake / "Person")).count() == loaded.rows["Person"]
    # The run's app transaction is the flow's own.
    assert DeltaTable(str(lake / "Person")).transaction_version(f"industrydata.{flow['id']}")
    again = client.post(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()
    second = wait_for_run(client, flow["id"], again["id"], invitee)
    assert second["status"] == "completed", second
    assert second["statistics"]["snapshotId"] == "1"
    # Nothing changed in the store: the run reads no row and writes none.
    assert second["statistics"]["rowsWritten"] == 0
    assert all(table["rowsRead"] == 0 for table in second["statistics"]["tables"])
