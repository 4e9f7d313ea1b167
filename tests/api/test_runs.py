"""Runs: start on demand only when ready, one at a time, throttled; listed in start order
(contract §4 rows 7–9, §5)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.config import Settings
from industrydata.service import Service
from tests.api.conftest import FLOWS, wait_for_run


def test_add_run_starts_a_run_and_it_completes(
    client: TestClient, ready_flow: dict[str, Any], admin: dict[str, str], settings: Settings
) -> None:
    response = client.post(
        f"{FLOWS}/{ready_flow['id']}/runs", json={"displayName": "Monday refresh"}, headers=admin
    )

    assert response.status_code == 201
    run = response.json()
    assert run["status"] == "running"
    assert run["displayName"] == "Monday refresh"
    assert response.headers["Location"].endswith(f"/runs/{run['id']}")
    finished = wait_for_run(client, ready_flow["id"], run["id"], admin)
    assert finished["status"] == "completed"
    assert finished["endDateTime"] is not None
    assert finished["statistics"]["rowsWritten"] == sum(
        table["rowsWritten"] for table in finished["statistics"]["tables"]
    )
    snapshots = sorted(
        path.name for path in (settings.lake_dir / "export" / "roster").iterdir() if path.is_dir()
    )
    assert finished["statistics"]["snapshotId"] in snapshots


def test_a_small_run_commits_its_progress_at_its_last_table_not_at_each(
    client: TestClient, ready_flow: dict[str, Any], admin: dict[str, str], service: Service
) -> None:
    progress_writes: list[str] = []

    def count(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE run SET heartbeat_at"):
            progress_writes.append(statement)

    event.listen(service.store.write_engine, "before_cursor_execute", count)
    try:
        response = client.post(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin)
        finished = wait_for_run(client, ready_flow["id"], response.json()["id"], admin)
    finally:
        event.remove(service.store.write_engine, "before_cursor_execute", count)

    assert finished["status"] == "completed"
    assert 1 <= len(progress_writes) < len(CANONICAL_TABLES), len(progress_writes)
    tables = finished["statistics"]["tables"]
    assert len(tables) == len(CANONICAL_TABLES)
    assert {table["status"] for table in tables} == {"completed"}


def test_add_run_on_flow_not_ready_conflicts(
    client: TestClient, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    response = client.post(f"{FLOWS}/{flow['id']}/runs", headers=admin)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "flowNotReady"


def test_list_runs_in_start_order(
    client: TestClient, ready_flow: dict[str, Any], admin: dict[str, str]
) -> None:
    second = client.post(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin).json()
    wait_for_run(client, ready_flow["id"], second["id"], admin)

    runs = client.get(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin).json()["value"]
    newest_first = client.get(
        f"{FLOWS}/{ready_flow['id']}/runs?$orderby=startDateTime desc", headers=admin
    ).json()["value"]

    assert [run["startDateTime"] for run in runs] == sorted(run["startDateTime"] for run in runs)
    assert [run["id"] for run in newest_first] == [run["id"] for run in reversed(runs)]


def test_run_permission_scopes(
    client: TestClient,
    ready_flow: dict[str, Any],
    service,
    tenant,  # type: ignore[no-untyped-def]
) -> None:
    from tests.factories import auth

    starter = auth(service, tenant.tenant_id, tenant.admin, scopes=["IndustryData-Run.Start"])
    reader = auth(service, tenant.tenant_id, tenant.admin, scopes=["IndustryData-Run.Read.All"])

    assert client.get(f"{FLOWS}/{ready_flow['id']}/runs", headers=reader).status_code == 200
    assert client.post(f"{FLOWS}/{ready_flow['id']}/runs", headers=reader).status_code == 403
    assert client.get(f"{FLOWS}/{ready_flow['id']}", headers=reader).status_code == 403
    assert client.post(f"{FLOWS}/{ready_flow['id']}/runs", headers=starter).status_code == 201


def test_on_demand_runs_are_throttled(
    client: TestClient, ready_flow: dict[str, Any], admin: dict[str, str], settings: Settings
) -> None:
    for _ in range(settings.run_throttle_count):
        run = client.post(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin).json()
        wait_for_run(client, ready_flow["id"], run["id"], admin)
    before = client.get(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin).json()["value"]

    response = client.post(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "tooManyRequests"
    assert 0 < int(response.headers["Retry-After"]) <= 12 * 3600
    assert client.get(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin).json()["value"] == before


def test_run_failure_sets_blocking_error_and_problem(
    client: TestClient, ready_flow: dict[str, Any], admin: dict[str, str], settings: Settings
) -> None:
    import shutil

    export = settings.lake_dir / "export"
    shutil.rmtree(export)
    export.write_text("the folder was replaced by a file")

    run = client.post(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin).json()
    finished = wait_for_run(client, ready_flow["id"], run["id"], admin)

    assert finished["status"] == "failed"
    assert finished["blockingError"]["code"] == "destinationUnreachable"
    assert finished["blockingError"]["message"]
    assert finished["endDateTime"] is not None
    flow = client.get(f"{FLOWS}/{ready_flow['id']}", headers=admin).json()
    assert (flow["readinessStatus"], flow["sharingState"]) == ("ready", "problem")

    export.unlink()
    again = client.post(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin).json()
    assert wait_for_run(client, ready_flow["id"], again["id"], admin)["status"] == "completed"
    flow = client.get(f"{FLOWS}/{ready_flow['id']}", headers=admin).json()
    assert flow["sharingState"] == "running"
