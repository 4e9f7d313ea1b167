"""The periodic work in production mode: each periodic task fires once per period however
many processes are up, and schedules keep starting runs across a rolling restart."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text, update

from industrydata.store import Invitation, Run
from tests.factories import wait_for

from .checks import runs_of, wait_until_no_run_is_running
from .conftest import Caller, Fleet, create_and_accept, seed_tenants, store_of

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PERIODIC_TASKS = (
    "industrydata.start_scheduled_runs",
    "industrydata.recover_stalled_runs",
)
"""The tasks the fast clock fires every second."""


def periodic_jobs(fleet: Fleet, task_name: str) -> list[tuple[int, str]]:
    store = store_of(fleet)
    try:
        with store.reading() as session:
            rows = session.execute(
                text(
                    "SELECT (args->>'timestamp')::bigint, status::text FROM procrastinate_jobs "
                    "WHERE task_name = :task"
                ),
                {"task": task_name},
            ).all()
    finally:
        store.dispose()
    return [(timestamp, status) for timestamp, status in rows]


def test_each_periodic_task_fires_once_a_period_with_two_api_processes_and_three_workers(
    fleet: Fleet, caller: Caller
) -> None:
    fleet.start_together("api", "api", "worker", "worker", "worker")
    started = time.time()
    time.sleep(8)
    for task_name in PERIODIC_TASKS:
        jobs = periodic_jobs(fleet, task_name)
        ticks = sorted({timestamp for timestamp, _ in jobs})
        assert ticks == list(range(ticks[0], ticks[-1] + 1)), (task_name, ticks)
        assert ticks[-1] - ticks[0] >= 5 and ticks[-1] >= started + 5, (task_name, ticks)
        # A tick's work is done once: by its first job; a job a lagging deferrer added
        # again for the same tick ends aborted without doing it (on a busy machine that job
        # may still be waiting for a worker: the ticks are read once their jobs have ended).
        examined = ticks[:-3]
        jobs = wait_for(partial(_ended, fleet, task_name, examined[-1]), timeout=30, interval=0.2)
        for tick in examined:
            statuses = Counter(status for timestamp, status in jobs if timestamp == tick)
            assert statuses["succeeded"] == 1, (task_name, tick, statuses)
            assert set(statuses) <= {"succeeded", "aborted"}, (task_name, tick, statuses)


def _ended(fleet: Fleet, task_name: str, last_tick: int) -> list[tuple[int, str]] | None:
    """The task's jobs, once every job of its ticks up to ``last_tick`` has ended."""
    jobs = periodic_jobs(fleet, task_name)
    waiting = [status for timestamp, status in jobs if timestamp <= last_tick]
    return jobs if not {"todo", "doing"} & set(waiting) else None


def move_history_back(fleet: Fleet, hours: int) -> None:
    """Travel in time: the flow was accepted, and its runs ran, ``hours`` earlier."""
    store = store_of(fleet)
    try:
        with store.writing() as session:
            shift = timedelta(hours=hours)
            session.execute(update(Invitation).values(responded_at=Invitation.responded_at - shift))
            session.execute(
                update(Run).values(
                    start_at=Run.start_at - shift,
                    heartbeat_at=Run.heartbeat_at - shift,
                    end_at=Run.end_at - shift,
                )
            )
            session.commit()
    finally:
        store.dispose()


def scheduled_runs(fleet: Fleet) -> list[Run]:
    return [run for run in runs_of(fleet) if run.trigger == "schedule"]


def test_a_schedule_keeps_starting_runs_across_a_rolling_restart_of_every_process(
    fleet: Fleet, caller: Caller, tmp_path: Path
) -> None:
    (tenant,) = seed_tenants(fleet, 1, students=8, drops=tmp_path / "drops")
    members = fleet.start_together("api", "api", "worker", "worker")
    minute = datetime.utcnow().minute
    with fleet.api() as client:
        create_and_accept(
            client,
            caller,
            tenant,
            fleet.data_dir / "lake" / "tenant",
            schedule={"frequency": "hourly", "timeOfDay": f"00:{minute:02d}"},
        )
    wait_until_no_run_is_running(fleet, timeout=60)
    assert scheduled_runs(fleet) == []

    move_history_back(fleet, hours=2)
    (first,) = wait_for(lambda: scheduled_runs(fleet), timeout=30, interval=0.2)
    wait_until_no_run_is_running(fleet, timeout=60)

    for member in members:
        # uvicorn ends a clean shutdown by raising SIGTERM again; a worker exits 0.
        assert fleet.stop(member) == (0 if member.kind == "worker" else -signal.SIGTERM)
        assert "shutdown complete" in member.log() or "stopped" in member.log()
        fleet.restart(member)
    time.sleep(3)
    assert [run.id for run in scheduled_runs(fleet)] == [first.id]

    move_history_back(fleet, hours=2)
    wait_for(lambda: len(scheduled_runs(fleet)) == 2, timeout=30, interval=0.2)
    runs = wait_until_no_run_is_running(fleet, timeout=60)
    time.sleep(3)
    scheduled = scheduled_runs(fleet)
    assert len(scheduled) == 2 and {run.status for run in scheduled} == {"completed"}
    assert len(runs_of(fleet)) == len(runs) == 3
