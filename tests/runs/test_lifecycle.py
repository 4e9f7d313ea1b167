"""Run lifecycle: one running run per flow, outcomes move the flow (§3), interrupted runs are
recovered as failed with ``runInterrupted`` (§5), old runs are purged."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from industrydata.errors import FlowNotReady, RunInProgress, StoreBusy
from industrydata.runs import (
    RETRY_OF,
    RUN_INTERRUPTED,
    RunOutcome,
    finish_run,
    interrupt_and_retry,
    purge_finished_runs,
    record_progress,
    recover_interrupted_runs,
)
from industrydata.states import FlowState, RunStatus, RunTrigger, Transition
from industrydata.store import Flow, Run, Store, open_store
from tests.contention import write_lock_held
from tests.factories import stored_flow, stored_run

NOW = datetime(2026, 11, 27, 6, 0, 0)


@pytest.fixture
def store(store_url: str) -> Store:
    store = open_store(store_url)
    yield store
    store.dispose()


def _flow(store: Store, state: FlowState = Transition.ACCEPTED) -> str:
    return stored_flow(store, state, now=NOW).id


def _start(store: Store, flow_id: str, now: datetime = NOW) -> str:
    return stored_run(store, flow_id, now=now)


def test_start_run_needs_a_ready_flow(store: Store) -> None:
    flow_id = _flow(store, Transition.CREATED)
    with pytest.raises(FlowNotReady):
        _start(store, flow_id)


def test_start_run_refuses_a_second_running_run(store: Store) -> None:
    flow_id = _flow(store)
    first = _start(store, flow_id)

    with pytest.raises(RunInProgress) as raised:
        _start(store, flow_id)

    assert raised.value.target == first


def test_finish_run_moves_the_flow_by_outcome(store: Store) -> None:
    flow_id = _flow(store)
    failed = _start(store, flow_id)
    finish_run(store, failed, status=RunStatus.FAILED, now=NOW)
    with store.reading() as session:
        flow = session.get(Flow, flow_id)
        assert (flow.readiness_status, flow.sharing_state) == ("ready", "problem")
        etag = flow.etag

    completed = _start(store, flow_id)
    finish_run(store, completed, status=RunStatus.COMPLETED, now=NOW)

    with store.reading() as session:
        flow = session.get(Flow, flow_id)
        assert (flow.readiness_status, flow.sharing_state) == ("ready", "running")
        assert flow.etag != etag
        assert session.get(Run, completed).end_at == NOW


def test_finish_run_twice_is_a_no_op(store: Store) -> None:
    run_id = _start(store, _flow(store))
    assert finish_run(store, run_id, status=RunStatus.COMPLETED, now=NOW)
    assert not finish_run(store, run_id, status=RunStatus.FAILED, now=NOW)
    with store.reading() as session:
        assert session.get(Run, run_id).status == "completed"


def test_recover_interrupted_runs_marks_every_running_run(store: Store) -> None:
    run_id = _start(store, _flow(store))

    assert recover_interrupted_runs(store, now=NOW + timedelta(minutes=1)) == 1

    with store.reading() as session:
        run = session.get(Run, run_id)
        assert run.status == "failed"
        assert run.blocking_error["code"] == RUN_INTERRUPTED
        assert run.flow.sharing_state == "problem"


def test_recover_interrupted_runs_with_heartbeat_spares_live_runs(store: Store) -> None:
    stale = _start(store, _flow(store), now=NOW - timedelta(hours=1))
    live = _start(store, _flow(store), now=NOW)

    assert recover_interrupted_runs(store, now=NOW, stale_before=NOW - timedelta(minutes=5)) == 1

    with store.reading() as session:
        assert session.get(Run, stale).status == "failed"
        assert session.get(Run, live).status == "running"


def test_recover_interrupted_runs_spares_owned_runs(store: Store) -> None:
    owned = _start(store, _flow(store), now=NOW - timedelta(hours=1))
    orphan = _start(store, _flow(store), now=NOW - timedelta(hours=1))

    recovered = recover_interrupted_runs(
        store, now=NOW, stale_before=NOW - timedelta(minutes=1), owned={owned}
    )

    assert recovered == 1
    with store.reading() as session:
        assert session.get(Run, owned).status == "running"
        assert session.get(Run, orphan).status == "failed"


@pytest.fixture
def impatient_store(store_url: str) -> Store:
    store = open_store(store_url, lock_wait_seconds=0.2)
    yield store
    store.dispose()


def test_progress_is_skipped_and_an_outcome_kept_while_the_store_is_busy(
    impatient_store: Store, store_url: str
) -> None:
    store = impatient_store
    run_id = _start(store, _flow(store))
    outcome = RunOutcome(run_id, RunStatus.COMPLETED, NOW, statistics={"snapshotId": "s1"})

    with write_lock_held(store_url, "run", "flow"):
        assert record_progress(store, run_id, {"progressPercent": 50}, NOW)
        with pytest.raises(StoreBusy):
            outcome.record(store)

    with store.reading() as session:
        assert session.get(Run, run_id).status == "running"
    assert outcome.record(store)
    with store.reading() as session:
        run = session.get(Run, run_id)
        assert (run.status, run.statistics, run.end_at) == ("completed", {"snapshotId": "s1"}, NOW)
        assert run.flow.sharing_state == "running"


def test_purge_finished_runs_keeps_recent_and_running(store: Store) -> None:
    flow_id = _flow(store)
    old = _start(store, flow_id, now=NOW - timedelta(days=40))
    finish_run(store, old, status=RunStatus.COMPLETED, now=NOW - timedelta(days=40))
    recent = _start(store, flow_id, now=NOW - timedelta(days=1))
    finish_run(store, recent, status=RunStatus.COMPLETED, now=NOW - timedelta(days=1))
    running = _start(store, flow_id)

    assert purge_finished_runs(store, older_than=NOW - timedelta(days=30)) == 1

    with store.reading() as session:
        assert session.get(Run, old) is None
        assert session.get(Run, recent) is not None
        assert session.get(Run, running) is not None


def _runs(store: Store, flow_id: str) -> list[Run]:
    with store.reading() as session:
        query = select(Run).where(Run.flow_id == flow_id).order_by(Run.start_at)
        return list(session.scalars(query))


def test_an_interrupted_run_fails_and_gets_one_retry_of_the_same_trigger(store: Store) -> None:
    flow_id = _flow(store)
    run_id = _start(store, flow_id)
    later = NOW + timedelta(minutes=1)

    retry_id = interrupt_and_retry(store, run_id, now=later, message="worker gone")

    interrupted, retry = _runs(store, flow_id)
    assert interrupted.id == run_id and interrupted.status == "failed"
    assert interrupted.blocking_error["code"] == RUN_INTERRUPTED
    assert interrupted.blocking_error["message"] == "worker gone"
    assert retry.id == retry_id and retry.status == "running" and retry.start_at == later
    assert retry.trigger == RunTrigger.ON_DEMAND.value
    assert retry.statistics[RETRY_OF] == run_id and retry.statistics["format"] == "sdsCsv"
    assert interrupt_and_retry(store, run_id, now=later, message="again") is None
    assert len(_runs(store, flow_id)) == 2


def test_a_retry_that_is_interrupted_too_is_not_retried_again(store: Store) -> None:
    flow_id = _flow(store)
    retry_id = interrupt_and_retry(store, _start(store, flow_id), now=NOW, message="gone")
    assert retry_id is not None

    assert interrupt_and_retry(store, retry_id, now=NOW, message="gone again") is None

    runs = _runs(store, flow_id)
    assert [run.status for run in runs] == ["failed", "failed"]
    assert runs[1].blocking_error["code"] == RUN_INTERRUPTED


def test_runs_that_ended_otherwise_or_were_followed_get_no_retry(store: Store) -> None:
    completed_flow = _flow(store)
    completed = _start(store, completed_flow)
    finish_run(store, completed, status=RunStatus.COMPLETED, now=NOW)
    assert interrupt_and_retry(store, completed, now=NOW, message="late") is None
    assert [run.status for run in _runs(store, completed_flow)] == ["completed"]

    followed_flow = _flow(store)
    first = _start(store, followed_flow)
    recover_interrupted_runs(store, now=NOW)
    _start(store, followed_flow, now=NOW + timedelta(seconds=5))
    assert interrupt_and_retry(store, first, now=NOW, message="late") is None
    assert len(_runs(store, followed_flow)) == 2
