"""Crash safety: a worker SIGKILLed or drained in the middle of runs; its runs end
interrupted, are retried once by another worker, and no half snapshot is ever current."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from industrydata.store import Run
from tests.factories import wait_for
from tests.processes import live_group_members

from .checks import (
    assert_no_flow_had_two_running_runs,
    assert_snapshot_equals_store,
    published_snapshot,
    runs_of,
    wait_until_no_run_is_running,
)
from .conftest import FLOWS, Caller, Fleet, create_and_accept, seed_tenants, store_of

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def progress_of(fleet: Fleet, run_ids: list[str]) -> dict[str, int]:
    runs = {run.id: run for run in runs_of(fleet)}
    return {run_id: runs[run_id].statistics["progressPercent"] for run_id in run_ids}


def test_a_worker_killed_in_the_middle_of_five_runs_is_recovered_and_retried_once(
    fleet: Fleet, caller: Caller, tmp_path: Path
) -> None:
    tenants = seed_tenants(fleet, 5, students=40, drops=tmp_path / "drops")
    api = fleet.start("api", wait=False)
    victim = fleet.start("worker", INDUSTRYDATA_WORKER_CONCURRENCY="5")
    fleet.wait_ready(api)
    lake = fleet.data_dir / "lake"
    with fleet.api() as client:
        flow_ids = [
            create_and_accept(client, caller, tenant, lake / f"tenant-{index}")
            for index, tenant in enumerate(tenants)
        ]
        wait_until_no_run_is_running(fleet, timeout=120)
        previous = [published_snapshot(lake / f"tenant-{index}") for index in range(5)]

        store = store_of(fleet)
        blocker = store.write_engine.connect()
        # Exports read their tables in order: holding Person makes every run stop half-way,
        # with the tables before it written, until the lock is released.
        blocker.execute(text("LOCK TABLE canonical_person IN ACCESS EXCLUSIVE MODE"))
        try:
            run_ids = []
            for tenant, flow_id in zip(tenants, flow_ids, strict=True):
                headers = caller.headers(tenant.tenant_id, tenant.owner)
                response = client.post(f"{FLOWS}/{flow_id}/runs", json={}, headers=headers)
                assert response.status_code == 201, response.text
                run_ids.append(response.json()["id"])
            wait_for(
                lambda: all(p > 0 for p in progress_of(fleet, run_ids).values()),
                timeout=60,
                interval=0.2,
            )
            survivor = fleet.start("worker")
            assert victim.process is not None
            victim.process.kill()
            victim.process.wait(timeout=10)
            killed_at = datetime.utcnow()
            # Its export processes notice by themselves and end, each before publishing.
            wait_for(lambda: not live_group_members(victim.process.pid), timeout=30, interval=0.2)

            def interrupted() -> list[Run] | None:
                runs = {run.id: run for run in runs_of(fleet)}
                ended = [runs[run_id] for run_id in run_ids if runs[run_id].status != "running"]
                return ended if len(ended) == 5 else None

            ended = wait_for(interrupted, timeout=60, interval=0.2)
            for index in range(5):
                assert published_snapshot(lake / f"tenant-{index}") == previous[index]
        finally:
            blocker.rollback()
            blocker.close()
            store.dispose()

        bound = 4 + 1 + 15  # stalled after 4 s, recovery every second, slack for a busy machine
        for run in ended:
            assert run.status == "failed" and run.blocking_error["code"] == "runInterrupted"
            assert (run.end_at - killed_at).total_seconds() <= bound, run.end_at - killed_at
        runs = wait_until_no_run_is_running(fleet, timeout=120)

    retries = [run for run in runs if (run.statistics or {}).get("retryOf")]
    assert sorted(run.statistics["retryOf"] for run in retries) == sorted(run_ids)
    assert {run.status for run in retries} == {"completed"}
    assert len(runs) == 15  # per flow: the accept run, the interrupted run, its one retry
    assert_no_flow_had_two_running_runs(runs)
    for index, tenant in enumerate(tenants):
        assert published_snapshot(lake / f"tenant-{index}") != previous[index]
        assert_snapshot_equals_store(fleet, tenant, lake / f"tenant-{index}", tmp_path)

    store = store_of(fleet)
    try:
        with store.reading() as session:
            jobs = session.execute(
                text(
                    "SELECT args->>'run_id', status FROM procrastinate_jobs "
                    "WHERE task_name = 'industrydata.run_export'"
                )
            ).all()
    finally:
        store.dispose()
    statuses: dict[str, list[str]] = defaultdict(list)
    for run_id, status in jobs:
        statuses[run_id].append(str(status))
    assert {run.id for run in runs} == set(statuses)
    for run in runs:
        expected = "failed" if run.id in run_ids else "succeeded"
        assert statuses[run.id] == [expected], (run.id, statuses[run.id])
    assert survivor.alive and api.alive


def job_status(fleet: Fleet, run_id: str) -> str | None:
    store = store_of(fleet)
    try:
        with store.reading() as session:
            return session.execute(
                text("SELECT status::text FROM procrastinate_jobs WHERE args->>'run_id' = :id"),
                {"id": run_id},
            ).scalar()
    finally:
        store.dispose()


def test_a_cancel_reaches_its_worker_and_sigterm_drains_one_whose_run_is_retried(
    fleet: Fleet, caller: Caller, tmp_path: Path
) -> None:
    (tenant,) = seed_tenants(fleet, 1, students=8, drops=tmp_path / "drops")
    api = fleet.start("api", wait=False)
    holder = fleet.start("worker", INDUSTRYDATA_WORKER_DRAIN_SECONDS="2")
    fleet.wait_ready(api)
    lake = fleet.data_dir / "lake" / "tenant"
    with fleet.api() as client:
        flow_id = create_and_accept(client, caller, tenant, lake)
        wait_until_no_run_is_running(fleet, timeout=60)
        previous = published_snapshot(lake)
        headers = caller.headers(tenant.tenant_id, tenant.owner)

        def run_now() -> str:
            response = client.post(f"{FLOWS}/{flow_id}/runs", json={}, headers=headers)
            assert response.status_code == 201, response.text
            run_id = response.json()["id"]
            wait_for(lambda: progress_of(fleet, [run_id])[run_id] > 0, timeout=60, interval=0.2)
            return run_id

        store = store_of(fleet)
        blocker = store.write_engine.connect()
        blocker.execute(text("LOCK TABLE canonical_person IN ACCESS EXCLUSIVE MODE"))
        try:
            cancelled_id = run_now()
            cancelled = client.post(
                f"{FLOWS}/{flow_id}/runs/{cancelled_id}/cancel", headers=headers
            )
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["blockingError"]["code"] == "runCancelled"
            # The worker stops the export while it still waits on the lock.
            wait_for(lambda: job_status(fleet, cancelled_id) == "aborted", timeout=45, interval=0.2)

            drained_id = run_now()
            fleet.start("worker")
            assert holder.process is not None
            holder.process.terminate()
            started = time.monotonic()
            assert holder.process.wait(timeout=30) == 0
            drained_in = time.monotonic() - started
            (interrupted,) = [run for run in runs_of(fleet) if run.id == drained_id]
            assert interrupted.status == "failed"
            assert interrupted.blocking_error["code"] == "runInterrupted"
            assert published_snapshot(lake) == previous
        finally:
            blocker.rollback()
            blocker.close()
            store.dispose()
        runs = wait_until_no_run_is_running(fleet, timeout=60)

    assert drained_in < 2 + 10, drained_in  # the drain time, then the export is stopped
    (cancelled_run,) = [run for run in runs if run.id == cancelled_id]
    assert cancelled_run.status == "failed"
    assert cancelled_run.blocking_error["code"] == "runCancelled"
    assert not [run for run in runs if (run.statistics or {}).get("retryOf") == cancelled_id]
    (retry,) = [run for run in runs if (run.statistics or {}).get("retryOf") == drained_id]
    assert retry.status == "completed" and len(runs) == 4
    assert published_snapshot(lake) != previous
    assert_snapshot_equals_store(fleet, tenant, lake, tmp_path)
