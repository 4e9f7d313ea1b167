"""Cancelling a run in the store (``sharing.cancel_run``): the run ends ``failed`` with
``runCancelled`` in one transaction, the flow keeps its state and eTag, and whatever the
executor writes afterwards (progress, outcome) finds the run ended and writes nothing.
A run that is not running, or is already publishing, is refused and left as it was."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import update

from industrydata import sharing
from industrydata.errors import NotFound, RunNotInProgress, RunPublishing
from industrydata.identity import Principal
from industrydata.runs import RUN_CANCELLED, finish_run, record_progress
from industrydata.runs.lifecycle import initial_statistics, record_last_progress
from industrydata.states import FlowState, RunStatus, Transition
from industrydata.store import Flow, Run, Store, open_store
from tests.contention import write_lock_held
from tests.factories import stored_flow, stored_run

NOW = datetime(2026, 11, 27, 6, 0, 0)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = open_store(store_url, lock_wait_seconds=5)
    yield store
    store.dispose()


def _principal(tenant_id: str, *, application: bool = False) -> Principal:
    permission = frozenset({"IndustryData-OutboundFlow.ReadWrite.All"})
    if application:
        return Principal(tenant_id, str(uuid.uuid4()), roles=permission)
    return Principal(tenant_id, str(uuid.uuid4()), scopes=permission)


def _flow(
    store: Store, state: FlowState = Transition.RUN_COMPLETED, tenant_id: str | None = None
) -> Flow:
    return stored_flow(store, state, now=NOW, tenant_id=tenant_id)


def _start(store: Store, flow_id: str) -> str:
    return stored_run(store, flow_id, now=NOW)


def _run(store: Store, run_id: str) -> Run:
    with store.reading() as session:
        return session.get(Run, run_id)


def _flow_now(store: Store, flow_id: str) -> tuple[str, str, str]:
    with store.reading() as session:
        flow = session.get(Flow, flow_id)
        return flow.readiness_status, flow.sharing_state, flow.etag


def _every_table_written() -> dict:
    statistics = initial_statistics("sdsCsv")
    for entry in statistics["tables"]:
        entry["status"] = "completed"
    statistics["progressPercent"] = 99
    return statistics


@pytest.mark.parametrize(
    "state", [Transition.RUN_COMPLETED, Transition.RUN_FAILED], ids=["running", "problem"]
)
def test_cancel_ends_the_run_and_the_flow_keeps_its_state(store: Store, state: FlowState) -> None:
    flow = _flow(store, state)
    run_id = _start(store, flow.id)
    before = _flow_now(store, flow.id)
    principal = _principal(flow.tenant_id)

    run = sharing.cancel_run(store, principal=principal, flow_id=flow.id, run_id=run_id)

    assert run.status == "failed"
    assert run.end_at is not None
    assert run.blocking_error["code"] == RUN_CANCELLED
    assert run.blocking_error["message"] == (
        f"The run was cancelled by user '{principal.object_id}'."
    )
    stored = _run(store, run_id)
    assert (stored.status, stored.blocking_error) == ("failed", run.blocking_error)
    assert _flow_now(store, flow.id) == before


def test_cancel_by_an_application_says_so(store: Store) -> None:
    flow = _flow(store)
    run_id = _start(store, flow.id)
    application = _principal(flow.tenant_id, application=True)

    run = sharing.cancel_run(store, principal=application, flow_id=flow.id, run_id=run_id)

    assert run.blocking_error["message"] == (
        f"The run was cancelled by application '{application.object_id}'."
    )


@pytest.mark.parametrize(
    ("state", "outcome"),
    [(Transition.RUN_COMPLETED, RunStatus.FAILED), (Transition.RUN_FAILED, RunStatus.COMPLETED)],
    ids=["failure-after-cancel", "completion-after-cancel"],
)
def test_the_executors_writes_after_a_cancel_write_nothing(
    store: Store, state: FlowState, outcome: RunStatus
) -> None:
    """Each outcome would move the flow if it were written (failed: to problem; completed:
    to running), so an unchanged flow shows it was not."""
    flow = _flow(store, state)
    run_id = _start(store, flow.id)
    sharing.cancel_run(
        store, principal=_principal(flow.tenant_id), flow_id=flow.id, run_id=run_id
    )
    cancelled = _run(store, run_id)
    before = _flow_now(store, flow.id)
    later = datetime(2026, 11, 27, 7, 0, 0)

    assert record_progress(store, run_id, _every_table_written(), later) is False
    assert (
        record_last_progress(store, run_id, _every_table_written(), later, within_seconds=1)
        is False
    )
    assert finish_run(store, run_id, status=outcome, now=later, statistics={}) is False

    stored = _run(store, run_id)
    assert (stored.status, stored.end_at, stored.blocking_error, stored.statistics) == (
        cancelled.status,
        cancelled.end_at,
        cancelled.blocking_error,
        cancelled.statistics,
    )
    assert _flow_now(store, flow.id) == before


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED])
def test_cancel_of_a_finished_run_conflicts_and_changes_nothing(
    store: Store, status: RunStatus
) -> None:
    flow = _flow(store)
    run_id = _start(store, flow.id)
    finish_run(store, run_id, status=status, now=NOW)
    finished = _run(store, run_id)
    before = _flow_now(store, flow.id)

    with pytest.raises(RunNotInProgress, match=f"it is {status.value}"):
        sharing.cancel_run(
            store, principal=_principal(flow.tenant_id), flow_id=flow.id, run_id=run_id
        )

    stored = _run(store, run_id)
    assert (stored.status, stored.end_at, stored.blocking_error) == (
        finished.status,
        finished.end_at,
        finished.blocking_error,
    )
    assert _flow_now(store, flow.id) == before


def test_cancel_of_a_publishing_run_conflicts_and_changes_nothing(store: Store) -> None:
    """The executor records the last table before it lets the export publish; from then on
    the snapshot will be published, so a cancel could only lie about it."""
    flow = _flow(store)
    run_id = _start(store, flow.id)
    assert record_last_progress(store, run_id, _every_table_written(), NOW, within_seconds=1)

    with pytest.raises(RunPublishing):
        sharing.cancel_run(
            store, principal=_principal(flow.tenant_id), flow_id=flow.id, run_id=run_id
        )

    assert _run(store, run_id).status == "running"


def test_cancel_waits_for_the_last_tables_progress_in_flight(store: Store) -> None:
    """The last table's progress and a cancel cannot interleave: a cancel that arrives while
    that progress is being written waits for it, then sees the run publishing (on PostgreSQL
    the run's row is read ``FOR UPDATE``; SQLite serialises all writes)."""
    flow = _flow(store)
    run_id = _start(store, flow.id)
    outcome: list[BaseException | None] = []

    def cancel() -> None:
        try:
            sharing.cancel_run(
                store, principal=_principal(flow.tenant_id), flow_id=flow.id, run_id=run_id
            )
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)

    canceller = threading.Thread(target=cancel)
    with store.writing() as session:
        session.execute(
            update(Run).where(Run.id == run_id).values(statistics=_every_table_written())
        )
        canceller.start()
        time.sleep(0.5)  # the cancel reaches the lock and waits there
        session.commit()
    canceller.join(10)

    assert len(outcome) == 1
    assert isinstance(outcome[0], RunPublishing)
    assert _run(store, run_id).status == "running"


def test_cancel_of_another_tenants_run_is_not_found(store: Store) -> None:
    flow = _flow(store)
    run_id = _start(store, flow.id)

    with pytest.raises(NotFound):
        sharing.cancel_run(
            store, principal=_principal(str(uuid.uuid4())), flow_id=flow.id, run_id=run_id
        )

    assert _run(store, run_id).status == "running"


def test_cancel_of_a_run_of_another_flow_or_none_is_not_found(store: Store) -> None:
    flow = _flow(store)
    other = _flow(store, tenant_id=flow.tenant_id)
    other_run = _start(store, other.id)
    principal = _principal(flow.tenant_id)

    for run_id in (other_run, str(uuid.uuid4()), "not-a-run"):
        with pytest.raises(NotFound):
            sharing.cancel_run(store, principal=principal, flow_id=flow.id, run_id=run_id)

    assert _run(store, other_run).status == "running"


def test_cancel_of_an_unknown_flow_is_not_found(store: Store) -> None:
    flow = _flow(store)
    run_id = _start(store, flow.id)

    for flow_id in (str(uuid.uuid4()), "not-a-flow"):
        with pytest.raises(NotFound):
            sharing.cancel_run(
                store, principal=_principal(flow.tenant_id), flow_id=flow_id, run_id=run_id
            )

    assert _run(store, run_id).status == "running"


def test_last_progress_on_a_busy_store_goes_by_the_runs_status(store_url: str) -> None:
    """A long writer never keeps a run from publishing: the last progress is tried for a
    while, then the run's status is read (reads do not wait)."""
    impatient = open_store(store_url, lock_wait_seconds=0.2)
    try:
        flow = _flow(impatient)
        running = _start(impatient, flow.id)
        flow_two = _flow(impatient)
        cancelled = _start(impatient, flow_two.id)
        sharing.cancel_run(
            impatient,
            principal=_principal(flow_two.tenant_id),
            flow_id=flow_two.id,
            run_id=cancelled,
        )

        with write_lock_held(store_url, "run", "flow"):
            started = time.monotonic()
            goes_on = record_last_progress(
                impatient, running, _every_table_written(), NOW, within_seconds=0.5
            )
            stops = record_last_progress(
                impatient, cancelled, _every_table_written(), NOW, within_seconds=0.5
            )
            elapsed = time.monotonic() - started

        assert (goes_on, stops) == (True, False)
        assert elapsed < 5
        assert _run(impatient, running).statistics["progressPercent"] == 0
    finally:
        impatient.dispose()
