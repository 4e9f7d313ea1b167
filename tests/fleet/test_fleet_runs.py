"""Production mode end to end: two API processes that only enqueue, three workers that execute,
forty tenants at once, one PostgreSQL (processes from deploy/Procfile, see conftest)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .checks import (
    assert_no_flow_had_two_running_runs,
    assert_snapshot_equals_store,
    wait_until_no_run_is_running,
)
from .conftest import FLOWS, Caller, Fleet, create_and_accept, seed_tenants

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_forty_tenants_run_at_once_on_two_api_processes_and_three_workers(
    fleet: Fleet, caller: Caller, tmp_path: Path
) -> None:
    tenants = seed_tenants(fleet, 40, students=8, drops=tmp_path / "drops")
    fleet.start_together("api", "api", "worker", "worker", "worker")
    clients = fleet.clients()
    lake = fleet.data_dir / "lake"

    def accept(index: int) -> str:
        tenant = tenants[index]
        return create_and_accept(
            clients[index % len(clients)], caller, tenant, lake / f"tenant-{index}"
        )

    with ThreadPoolExecutor(8) as pool:
        flow_ids = list(pool.map(accept, range(len(tenants))))
    first = wait_until_no_run_is_running(fleet, timeout=240)
    assert len(first) == 40 and {run.trigger for run in first} == {"accept"}

    def run_now(index: int) -> httpx.Response:
        tenant = tenants[index]
        headers = caller.headers(tenant.tenant_id, tenant.owner)
        return clients[(index + 1) % len(clients)].post(
            f"{FLOWS}/{flow_ids[index]}/runs", json={}, headers=headers
        )

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(run_now, range(len(tenants))))
    assert [response.status_code for response in responses] == [201] * 40
    runs = wait_until_no_run_is_running(fleet, timeout=240)

    assert len(runs) == 80
    assert {run.status for run in runs} == {"completed"}, [
        (run.id, run.status, run.blocking_error) for run in runs if run.status != "completed"
    ]
    assert_no_flow_had_two_running_runs(runs)
    # Each worker counts the runs it executed; the API processes report the queue.
    counted = 0
    for member in fleet.processes:
        body = httpx.get(f"{member.url}/metrics", timeout=10, trust_env=False).text
        if member.kind == "worker":
            counted += sum(
                float(line.rsplit(" ", 1)[1])
                for line in body.splitlines()
                if line.startswith("industrydata_run_duration_seconds_count{")
            )
        assert 'industrydata_queue_depth{queue="runs"} 0.0' in body
    assert counted == 80
    for index, tenant in enumerate(tenants):
        assert_snapshot_equals_store(fleet, tenant, lake / f"tenant-{index}", tmp_path)
