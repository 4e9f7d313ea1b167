"""Run lifecycle in the store: start, progress, finish, cancel, recovery, purge.

Every function here is a short transaction of its own (``end_cancelled`` joins its caller's),
so a run's state is visible to the API while it executes. The flow's state follows each run's
outcome (contract §3); a cancelled run leaves it as it was.

The store may be busy (another writer holds the lock past the wait): progress is then
skipped (the next one carries it; the last table's is tried again, see
``record_last_progress``), while a run's outcome (``RunOutcome``) is kept and written
again until it lands, so a run never stays ``running`` because one write found the store busy.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..canonical.tables import CANONICAL_TABLES
from ..errors import FlowNotReady, RunInProgress, StoreBusy
from ..states import FlowState, ReadinessStatus, RunStatus, RunTrigger, Transition
from ..store import Flow, Run, Store, retry_while_busy

__all__ = [
    "RETRY_OF",
    "RUN_CANCELLED",
    "RUN_INTERRUPTED",
    "RunOutcome",
    "active_run",
    "apply_flow_state",
    "end_cancelled",
    "finish_run",
    "initial_statistics",
    "interrupt_and_retry",
    "is_publishing",
    "new_etag",
    "purge_finished_runs",
    "record_last_progress",
    "record_progress",
    "recover_interrupted_runs",
    "run_error",
    "start_run",
]

logger = logging.getLogger(__name__)

RUN_INTERRUPTED = "runInterrupted"
RUN_CANCELLED = "runCancelled"


def new_etag() -> str:
    return uuid.uuid4().hex


def apply_flow_state(flow: Flow, state: FlowState, now: datetime) -> None:
    """Move ``flow`` to ``state``; every write of a flow changes its eTag."""
    flow.readiness_status = state.readiness_status.value
    flow.sharing_state = state.sharing_state.value
    flow.etag = new_etag()
    flow.modified_at = now


def initial_statistics(format: str) -> dict[str, Any]:
    return {
        "snapshotId": None,
        "format": format,
        "progressPercent": 0,
        "tables": [
            {
                "name": table.name,
                "rowsRead": 0,
                "rowsWritten": 0,
                "filesWritten": 0,
                "bytesWritten": 0,
                "status": "pending",
            }
            for table in CANONICAL_TABLES
        ],
        "rowsWritten": 0,
        "filesWritten": 0,
        "bytesWritten": 0,
        "errors": 0,
        "warnings": 0,
        "durationSeconds": None,
    }


def active_run(session: Session, flow_id: str) -> Run | None:
    query = select(Run).where(Run.flow_id == flow_id, Run.status == RunStatus.RUNNING.value)
    return session.scalars(query).first()


def start_run(
    session: Session,
    *,
    flow: Flow,
    format: str,
    trigger: RunTrigger,
    now: datetime,
    display_name: str | None = None,
) -> Run:
    """Add a running run to ``flow`` (flushed, not committed).

    Raises:
        FlowNotReady: the flow's invitation is not accepted.
        RunInProgress: another run of the flow is running (``target`` is its id).
    """
    if flow.readiness_status != ReadinessStatus.READY.value:
        raise FlowNotReady(
            f"The flow is {flow.readiness_status}; runs start only when it is ready "
            "(its invitation accepted)."
        )
    running = active_run(session, flow.id)
    if running is not None:
        raise RunInProgress("A run of this flow is already in progress.", target=running.id)
    run = Run(
        id=str(uuid.uuid4()),
        flow_id=flow.id,
        tenant_id=flow.tenant_id,
        display_name=display_name,
        trigger=trigger.value,
        status=RunStatus.RUNNING.value,
        start_at=now,
        heartbeat_at=now,
        statistics=initial_statistics(format),
    )
    session.add(run)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        running = active_run(session, flow.id)
        raise RunInProgress(
            "A run of this flow is already in progress.",
            target=running.id if running else None,
        ) from exc
    return run


def _save_progress(store: Store, run_id: str, statistics: dict[str, Any], now: datetime) -> bool:
    """Save a running run's statistics and heartbeat; False when it is no longer running.

    Raises:
        StoreBusy: the store stayed locked; nothing was written.
    """
    with store.writing() as session:
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.RUNNING.value)
            .values(statistics=statistics, heartbeat_at=now)
        )
        session.commit()
    return result.rowcount == 1


def record_progress(store: Store, run_id: str, statistics: dict[str, Any], now: datetime) -> bool:
    """Save a running run's statistics and heartbeat; False when it is no longer running.

    A busy store skips this progress (True: the run goes on; the next progress carries it).
    """
    try:
        return _save_progress(store, run_id, statistics, now)
    except StoreBusy:
        logger.info("run %s: store busy, progress skipped", run_id)
        return True


def record_last_progress(
    store: Store, run_id: str, statistics: dict[str, Any], now: datetime, *, within_seconds: float
) -> bool:
    """Save the progress of a run's last table, before its export publishes; False when the
    run is no longer running (the export must then stop, and publishes nothing).

    Once this has landed the run ``is_publishing`` and a cancel is refused, so a cancel either
    commits first (and this returns False) or finds the run publishing. A busy store is tried
    again for ``within_seconds``; if it stays busy, the run's status is read instead (reads do
    not wait) and the export goes on while the run is running, so a long writer delays a
    publication but never fails it. Only then can a cancel that commits in the instant before
    the publication find the snapshot published.
    """
    try:
        return retry_while_busy(
            lambda: _save_progress(store, run_id, statistics, now), within_seconds=within_seconds
        )
    except StoreBusy:
        logger.warning("run %s: store busy, it publishes without its last progress", run_id)
    with store.reading() as session:
        run = session.get(Run, run_id)
        return run is not None and run.status == RunStatus.RUNNING.value


def is_publishing(run: Run) -> bool:
    """Every table of the run is written and recorded (``record_last_progress``): its export
    publishes the snapshot now, and a cancel could no longer keep it back."""
    tables = (run.statistics or {}).get("tables") or []
    return bool(tables) and all(entry.get("status") == "completed" for entry in tables)


def end_cancelled(run: Run, now: datetime, reason: str) -> None:
    """End ``run`` as failed with ``runCancelled`` in the caller's transaction; its flow is
    left as it is (whoever cancels decides what becomes of it)."""
    run.status = RunStatus.FAILED.value
    run.end_at = now
    run.blocking_error = run_error(RUN_CANCELLED, reason, now)


def finish_run(
    store: Store,
    run_id: str,
    *,
    status: RunStatus,
    now: datetime,
    statistics: dict[str, Any] | None = None,
    blocking_error: dict[str, Any] | None = None,
    flow_state: FlowState | None = None,
) -> bool:
    """End a running run and move its flow (default: by the run's outcome). False if gone."""
    with store.writing() as session:
        run = session.get(Run, run_id)
        if run is None or run.status != RunStatus.RUNNING.value:
            return False
        _end(session, run, status, now, statistics, blocking_error, flow_state)
        session.commit()
    return True


def _end(
    session: Session,
    run: Run,
    status: RunStatus,
    now: datetime,
    statistics: dict[str, Any] | None = None,
    blocking_error: dict[str, Any] | None = None,
    flow_state: FlowState | None = None,
) -> None:
    run.status = status.value
    run.end_at = now
    run.blocking_error = blocking_error
    if statistics is not None:
        run.statistics = statistics
    if flow_state is None:
        flow_state = (
            Transition.RUN_FAILED if status is RunStatus.FAILED else Transition.RUN_COMPLETED
        )
    flow = session.get(Flow, run.flow_id)
    if flow is not None and flow.readiness_status in (
        ReadinessStatus.READY.value,
        ReadinessStatus.FAILED.value,
    ):
        apply_flow_state(flow, flow_state, now)


RETRY_OF = "retryOf"
"""The statistics key naming the interrupted run a retry replaces."""


def interrupt_and_retry(store: Store, run_id: str, *, now: datetime, message: str) -> str | None:
    """A run whose executor is gone (a dead or drained worker): fail it with
    ``runInterrupted`` if it is still running, then start its one retry. Returns the retry.

    The retry is a new run of the same flow and trigger, with ``statistics.retryOf``; there
    is none for a run that is itself a retry, ended otherwise (cancelled, completed), or was
    followed by a newer run of its flow. Production mode's task queue sees the retry started
    in this transaction and queues its job with it.
    """
    with store.writing() as session:
        run = session.get(Run, run_id, with_for_update=True)
        if run is None:
            return None
        if run.status == RunStatus.RUNNING.value:
            _end(
                session,
                run,
                RunStatus.FAILED,
                now,
                blocking_error=run_error(RUN_INTERRUPTED, message, now),
            )
            session.flush()
        interrupted = (run.blocking_error or {}).get("code") == RUN_INTERRUPTED
        newer = session.scalar(
            select(func.count(Run.id)).where(
                Run.flow_id == run.flow_id, Run.start_at > run.start_at
            )
        )
        retry_id = None
        if interrupted and not (run.statistics or {}).get(RETRY_OF) and not newer:
            flow = session.get(Flow, run.flow_id)
            try:
                retry = start_run(
                    session,
                    flow=flow,
                    format=(run.statistics or {}).get("format") or "sdsCsv",
                    trigger=RunTrigger(run.trigger),
                    now=max(now, run.start_at),
                    display_name=run.display_name,
                )
            except (FlowNotReady, RunInProgress):
                retry = None
            if retry is not None:
                retry.statistics = {**retry.statistics, RETRY_OF: run.id}
                retry_id = retry.id
        session.commit()
    if retry_id:
        logger.warning("run %s was interrupted; its retry is run %s", run_id, retry_id)
    return retry_id


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, kept until written: ``record`` may be called again after StoreBusy."""

    run_id: str
    status: RunStatus
    end_at: datetime
    statistics: dict[str, Any] | None = None
    blocking_error: dict[str, Any] | None = None
    flow_state: FlowState | None = None

    def record(self, store: Store) -> bool:
        """Write the outcome (``finish_run``); False when the run is no longer running.

        Raises:
            StoreBusy: the store stayed locked; nothing was written.
        """
        return finish_run(
            store,
            self.run_id,
            status=self.status,
            now=self.end_at,
            statistics=self.statistics,
            blocking_error=self.blocking_error,
            flow_state=self.flow_state,
        )


def run_error(code: str, message: str, now: datetime, target: str | None = None) -> dict[str, Any]:
    """A run's ``blockingError`` (publicError)."""
    return {
        "code": code,
        "message": message,
        "target": target,
        "details": [],
        "innerError": {"code": code, "date": now.isoformat(timespec="seconds") + "Z"},
    }


def recover_interrupted_runs(
    store: Store,
    *,
    now: datetime,
    stale_before: datetime | None = None,
    owned: Collection[str] = (),
) -> int:
    """Mark runs left ``running`` by a dead executor as failed with ``runInterrupted``.

    With ``stale_before`` only runs whose heartbeat is older are taken (several processes
    share the store); without it every running run is (the embedded single process starts).
    Runs in ``owned`` (executing in this process, or with an outcome still to write) are left.
    """
    with store.reading() as session:
        query = select(Run.id).where(Run.status == RunStatus.RUNNING.value)
        if stale_before is not None:
            query = query.where(Run.heartbeat_at < stale_before)
        run_ids = [run_id for run_id in session.scalars(query) if run_id not in owned]
    message = "The run was interrupted (the process executing it stopped) and did not finish."
    recovered = 0
    for run_id in run_ids:
        recovered += finish_run(
            store,
            run_id,
            status=RunStatus.FAILED,
            now=now,
            blocking_error=run_error(RUN_INTERRUPTED, message, now),
        )
    return recovered


def purge_finished_runs(store: Store, *, older_than: datetime) -> int:
    """Delete finished runs that ended before ``older_than`` (run history retention)."""
    with store.writing() as session:
        result = session.execute(
            delete(Run).where(Run.end_at.is_not(None), Run.end_at < older_than)
        )
        session.commit()
    return result.rowcount
