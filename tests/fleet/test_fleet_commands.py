"""The command line of production mode: ``industrydata import ... --enqueue`` queues a load,
``industrydata jobs`` shows the queue, a worker loads; ``serve --workers N``."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import table_by_name
from industrydata.store import LoadJob
from tests.factories import wait_for

from .conftest import BIN, Fleet, free_port, seed_tenants, store_of

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def industrydata(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "industrydata"), *args],
        capture_output=True,
        text=True,
        env=fleet.environment(0),
        cwd=fleet.data_dir,
        timeout=120,
        check=False,
    )


def loads(fleet: Fleet) -> list[LoadJob]:
    store = store_of(fleet)
    try:
        with store.reading() as session:
            return list(session.scalars(select(LoadJob)))
    finally:
        store.dispose()


def people(fleet: Fleet, tenant_id: str) -> int:
    store = store_of(fleet)
    person = sql_table(table_by_name("Person"))
    try:
        with store.reading() as session:
            query = select(func.count()).where(person.c[TENANT_COLUMN] == tenant_id)
            return session.scalar(query.select_from(person))
    finally:
        store.dispose()


def test_an_enqueued_load_waits_in_the_queue_then_a_worker_loads_it(
    fleet: Fleet, tmp_path: Path
) -> None:
    (tenant,) = seed_tenants(fleet, 1, students=8, drops=tmp_path / "drops")
    before = people(fleet, tenant.tenant_id)
    drop = tmp_path / "bigger"
    generate_sds_csv(drop, students=300, seed=42)

    queued = industrydata(
        fleet, "import", "sds-csv", str(drop), "--tenant", tenant.tenant_id, "--enqueue"
    )
    assert queued.returncode == 0, queued.stderr
    (load,) = loads(fleet)
    assert load.status == "queued" and load.id in queued.stdout
    listed = industrydata(fleet, "jobs")
    assert listed.returncode == 0, listed.stderr
    assert "load_import" in listed.stdout and "waiting" in listed.stdout
    assert load.id[:8] in listed.stdout

    fleet.start("worker")
    (done,) = wait_for(
        lambda: [job for job in loads(fleet) if job.status not in ("queued", "running")],
        timeout=120,
        interval=0.3,
    )
    assert done.status == "completed", done.outcome
    assert done.outcome["rows"]["Person"] > 0 and done.progress["filesDone"] >= 1
    assert people(fleet, tenant.tenant_id) > before
    # The worker's periodic tasks (every second here) may be executing at this instant.
    after = industrydata(fleet, "jobs").stdout.strip().splitlines()
    assert after == ["no job is waiting or executing"] or all(
        line.split("\t")[2] == "periodic" for line in after[1:]
    ), after


def test_enqueue_is_refused_in_embedded_mode_and_changes_nothing(
    fleet: Fleet, tmp_path: Path
) -> None:
    (tenant,) = seed_tenants(fleet, 1, students=8, drops=tmp_path / "drops")
    fleet.settings["INDUSTRYDATA_MODE"] = "embedded"
    refused = industrydata(
        fleet,
        "import",
        "sds-csv",
        str(tmp_path / "drops" / "district-0"),
        "--tenant",
        tenant.tenant_id,
        "--enqueue",
    )
    assert refused.returncode == 1
    assert "INDUSTRYDATA_MODE=production" in refused.stderr
    assert loads(fleet) == []


def test_serve_with_workers_runs_several_api_processes_on_one_port(fleet: Fleet) -> None:
    port = free_port()
    command = [str(BIN / "industrydata"), "serve", "--port", str(port), "--workers", "2"]
    log = fleet.log_dir / "serve-workers.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=fleet.environment(port),
            cwd=fleet.data_dir,
            start_new_session=True,
        )
    try:
        pids: set[int] = set()

        def two_processes_answered() -> bool:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except httpx.TransportError:
                return False
            pids.add(response.json()["pid"])
            return len(pids) == 2

        wait_for(two_processes_answered, timeout=60, interval=0.05)
        assert server.pid not in pids  # uvicorn's supervisor serves nothing itself
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
