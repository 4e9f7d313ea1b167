"""The task queue on the store's PostgreSQL: a run and its job share one transaction."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from industrydata.fleet import QueueDispatcher, queued_run_ids
from industrydata.runs import start_run
from industrydata.states import RunTrigger
from industrydata.store import Flow, Store, open_store
from tests.conftest import POSTGRES_ONLY
from tests.factories import stored_flow

pytestmark = pytest.mark.parametrize("store_url", POSTGRES_ONLY, indirect=True)

NOW = datetime(2026, 12, 10, 6, 0, 0)


@pytest.fixture
def store(store_url: str) -> Store:
    store = open_store(store_url)
    yield store
    store.dispose()


def _ready_flow(store: Store) -> str:
    return stored_flow(store, now=NOW).id


def _jobs(store: Store) -> list[tuple]:
    with store.reading() as session:
        return session.execute(
            text(
                "SELECT task_name, queue_name, lock, args->>'run_id', status::text "
                "FROM procrastinate_jobs ORDER BY id"
            )
        ).all()


def _start(store: Store, flow_id: str, *, commit: bool) -> str:
    with store.writing() as session:
        run = start_run(
            session,
            flow=session.get(Flow, flow_id),
            format="sdsCsv",
            trigger=RunTrigger.ON_DEMAND,
            now=NOW,
        )
        if commit:
            session.commit()
        else:
            session.rollback()
        return run.id


def test_a_started_run_is_queued_in_its_own_transaction_with_its_flows_lock(
    store: Store,
) -> None:
    QueueDispatcher(store)
    flow_id = _ready_flow(store)

    rolled_back = _start(store, flow_id, commit=False)
    assert _jobs(store) == []
    run_id = _start(store, flow_id, commit=True)

    assert rolled_back != run_id
    assert _jobs(store) == [("industrydata.run_export", "runs", f"flow:{flow_id}", run_id, "todo")]
    assert queued_run_ids(store) == {run_id}


def test_cancel_aborts_the_runs_queued_job_only(store: Store) -> None:
    dispatcher = QueueDispatcher(store)
    kept = _start(store, _ready_flow(store), commit=True)
    cancelled = _start(store, _ready_flow(store), commit=True)

    dispatcher.cancel(cancelled)

    statuses = {run_id: status for *_, run_id, status in _jobs(store)}
    assert statuses == {kept: "todo", cancelled: "cancelled"}
    assert queued_run_ids(store) == {kept}


def test_a_store_without_the_queue_queues_nothing(store: Store) -> None:
    _start(store, _ready_flow(store), commit=True)
    assert _jobs(store) == []
