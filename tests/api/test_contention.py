"""A writer holding the store's lock never makes the API answer 500: writes wait a bounded
time and answer 503 with Retry-After, change nothing, and reads do not wait at all. A run
whose bookkeeping found the store busy is finished by the periodic tick, without a restart."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from industrydata.canonical.sql import CANONICAL_LOADS_APPLYING
from industrydata.config import Settings
from industrydata.runs import executor
from industrydata.runs import RUN_INTERRUPTED, start_run, utcnow
from industrydata.service import Service
from industrydata.states import RunTrigger
from industrydata.store import Flow
from tests.api.conftest import FLOWS, flow_body, wait_for_run
from tests.contention import write_lock_held
from tests.factories import TenantUsers

LOCK_WAIT = 0.5
SHORT_LOCK_WAIT = 0.1
"""For a run under a held lock: each of its 26 tables' progress waits this long, then is
skipped."""


@pytest.fixture
def settings(tmp_path: Path, store_url: str, request: pytest.FixtureRequest) -> Settings:
    """Writes wait ``LOCK_WAIT`` for the store's lock, or the wait parametrised (``indirect``)."""
    lock_wait = getattr(request, "param", LOCK_WAIT)
    return Settings(
        data_dir=tmp_path / "data",
        database_url=store_url,
        scheduler_interval_seconds=3600,
        store_lock_wait_seconds=lock_wait,
        run_finish_retry_seconds=lock_wait,
    )


def _committed_run(service: Service, flow_id: str, *, started_ago: timedelta) -> str:
    """A run committed as running, as the API or the scheduler leaves it before dispatch."""
    with service.store.writing() as session:
        run = start_run(
            session,
            flow=session.get(Flow, flow_id),
            format="sdsCsv",
            trigger=RunTrigger.ON_DEMAND,
            now=utcnow() - started_ago,
        )
        session.commit()
        return run.id


def _assert_busy(response: Any, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    error = response.json()["error"]
    assert error["code"] == "serviceUnavailable"
    assert error["innerError"]["request-id"]
    assert LOCK_WAIT <= elapsed < LOCK_WAIT + 2


def test_update_under_a_held_write_lock_answers_503_and_changes_nothing(
    client: TestClient, store_url: str, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    with write_lock_held(store_url, "flow"):
        started = time.monotonic()
        response = client.patch(
            f"{FLOWS}/{flow['id']}", json={"displayName": "Renamed"}, headers=admin
        )
        _assert_busy(response, time.monotonic() - started)

    after = client.get(f"{FLOWS}/{flow['id']}", headers=admin).json()
    assert after["displayName"] == flow["displayName"]
    assert after["eTag"] == flow["eTag"]
    renamed = client.patch(f"{FLOWS}/{flow['id']}", json={"displayName": "Renamed"}, headers=admin)
    assert renamed.status_code == 200, renamed.text


def test_create_under_a_held_write_lock_answers_503_and_creates_nothing(
    client: TestClient, store_url: str, tenant: TenantUsers, admin: dict[str, str]
) -> None:
    with write_lock_held(store_url, "flow"):
        started = time.monotonic()
        response = client.post(FLOWS, json=flow_body(tenant), headers=admin)
        _assert_busy(response, time.monotonic() - started)

    assert client.get(FLOWS, headers=admin).json()["value"] == []


def test_reads_do_not_wait_for_a_held_write_lock(
    client: TestClient, store_url: str, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    with write_lock_held(store_url, "flow"):
        started = time.monotonic()
        one = client.get(f"{FLOWS}/{flow['id']}", headers=admin)
        listed = client.get(FLOWS, headers=admin)
        elapsed = time.monotonic() - started

    assert one.status_code == 200 and one.json()["id"] == flow["id"]
    assert [item["id"] for item in listed.json()["value"]] == [flow["id"]]
    assert elapsed < LOCK_WAIT


@pytest.mark.parametrize("settings", [SHORT_LOCK_WAIT], indirect=True)
def test_run_whose_outcome_found_the_store_busy_is_finished_by_the_tick(
    client: TestClient,
    service: Service,
    store_url: str,
    ready_flow: dict[str, Any],
    admin: dict[str, str],
) -> None:
    runs = f"{FLOWS}/{ready_flow['id']}/runs"
    run_id = _committed_run(service, ready_flow["id"], started_ago=timedelta(0))

    with write_lock_held(store_url, "run", "flow"):
        assert service.dispatcher.submit(run_id).result(timeout=120).value == "completed"
        during = client.get(f"{runs}/{run_id}", headers=admin).json()
        assert during["status"] == "running"
        assert run_id in service.dispatcher.owned_runs()
        service.tick()
        assert client.get(f"{runs}/{run_id}", headers=admin).json()["status"] == "running"

    service.tick()

    finished = client.get(f"{runs}/{run_id}", headers=admin).json()
    assert finished["status"] == "completed"
    assert finished["statistics"]["snapshotId"]
    assert run_id not in service.dispatcher.owned_runs()
    again = client.post(runs, headers=admin)
    assert again.status_code == 201, again.text
    assert wait_for_run(client, ready_flow["id"], again.json()["id"], admin)["status"] == (
        "completed"
    )


def test_run_without_an_executor_is_failed_by_the_tick(
    client: TestClient, service: Service, ready_flow: dict[str, Any], admin: dict[str, str]
) -> None:
    runs = f"{FLOWS}/{ready_flow['id']}/runs"
    orphan = _committed_run(service, ready_flow["id"], started_ago=timedelta(minutes=10))
    refused = client.post(runs, headers=admin)
    assert refused.status_code == 409

    service.tick()

    failed = client.get(f"{runs}/{orphan}", headers=admin).json()
    assert failed["status"] == "failed"
    assert failed["blockingError"]["code"] == RUN_INTERRUPTED
    accepted = client.post(runs, headers=admin)
    assert accepted.status_code == 201, accepted.text
    assert wait_for_run(client, ready_flow["id"], accepted.json()["id"], admin)["status"] == (
        "completed"
    )


def test_a_fresh_run_not_yet_dispatched_is_left_alone_by_the_tick(
    client: TestClient, service: Service, ready_flow: dict[str, Any], admin: dict[str, str]
) -> None:
    run_id = _committed_run(service, ready_flow["id"], started_ago=timedelta(seconds=1))

    service.tick()

    run = client.get(f"{FLOWS}/{ready_flow['id']}/runs/{run_id}", headers=admin).json()
    assert run["status"] == "running"


def _fence_tenant(service: Service, tenant_id: str) -> None:
    """What a load of the tenant being applied leaves in the store."""
    now = utcnow()
    with service.store.write_engine.begin() as connection:
        connection.execute(
            CANONICAL_LOADS_APPLYING.insert().values(
                tenant_id=tenant_id, version=1, started_at=now, touched_at=now
            )
        )


def test_a_run_waits_while_a_load_of_its_tenant_is_applied(
    client: TestClient,
    service: Service,
    tenant: TenantUsers,
    ready_flow: dict[str, Any],
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(executor, "FENCED_EXPORT_POLL_SECONDS", 0.2)
    runs = f"{FLOWS}/{ready_flow['id']}/runs"
    _fence_tenant(service, tenant.tenant_id)

    run = client.post(runs, headers=admin).json()
    time.sleep(3)
    assert client.get(f"{runs}/{run['id']}", headers=admin).json()["status"] == "running"
    with service.store.write_engine.begin() as connection:
        connection.execute(CANONICAL_LOADS_APPLYING.delete())

    assert wait_for_run(client, ready_flow["id"], run["id"], admin)["status"] == "completed"


def test_a_run_fails_when_a_load_of_its_tenant_stays_half_applied(
    client: TestClient,
    service: Service,
    tenant: TenantUsers,
    ready_flow: dict[str, Any],
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(executor, "FENCED_EXPORT_POLL_SECONDS", 0.2)
    monkeypatch.setattr(executor, "FENCED_EXPORT_WAIT_SECONDS", 1.0)
    _fence_tenant(service, tenant.tenant_id)

    run = client.post(f"{FLOWS}/{ready_flow['id']}/runs", headers=admin).json()

    failed = wait_for_run(client, ready_flow["id"], run["id"], admin)
    assert failed["status"] == "failed"
    assert failed["blockingError"]["code"] == "loadInProgress"
