"""The task queue of production mode: procrastinate in the store's own PostgreSQL database.

Jobs are deferred on the store's connection, inside the transaction that needs them: a run
committed as ``running`` always has its job, and a rolled-back run never leaves one behind.
Every job of a flow carries the lock ``flow:<id>``, so procrastinate never executes two of a
flow at once (the store's partial unique index on running runs is the other guard).
"""

from __future__ import annotations

from typing import Any

import procrastinate
from sqlalchemy import column, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ..states import RunStatus
from ..store import Run, Store

__all__ = [
    "IMPORTS_QUEUE",
    "LOAD_IMPORT",
    "PERIODIC_QUEUE",
    "QUEUES",
    "RUNS_QUEUE",
    "RUN_EXPORT",
    "QueueDispatcher",
    "defer_on",
    "deferring_app",
    "flow_lock",
    "libpq_conninfo",
    "queue_depth",
    "queued_run_ids",
    "task_queue_app",
]

RUN_EXPORT = "industrydata.run_export"
LOAD_IMPORT = "industrydata.load_import"

RUNS_QUEUE = "runs"
IMPORTS_QUEUE = "imports"
PERIODIC_QUEUE = "periodic"
QUEUES = (RUNS_QUEUE, IMPORTS_QUEUE, PERIODIC_QUEUE)


def libpq_conninfo(database_url: str) -> str:
    """The SQLAlchemy URL of the store as a libpq connection string for procrastinate."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def task_queue_app(database_url: str, *, pool_size: int = 4) -> procrastinate.App:
    """The workers' procrastinate app (asynchronous, pooled); they register the tasks."""
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_conninfo(database_url), min_size=1, max_size=pool_size
    )
    return procrastinate.App(connector=connector)


def deferring_app(database_url: str) -> procrastinate.App:
    """An app that only defers and cancels on connections it is given (``defer_on``): it
    never opens a pool of its own, so it serves API processes and worker threads alike."""
    return procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(conninfo=libpq_conninfo(database_url))
    )


def flow_lock(flow_id: str) -> str:
    return f"flow:{flow_id}"


def defer_on(
    session: Session,
    app: procrastinate.App,
    task_name: str,
    *,
    queue: str,
    lock: str | None = None,
    **task_kwargs: Any,
) -> int:
    """Defer a job in ``session``'s transaction (it exists when, and only when, that commits).

    ``app`` is a ``deferring_app``: the session's connection is a synchronous one.
    """
    connection = session.connection().connection.driver_connection
    deferrer = app.configure_task(task_name, queue=queue, lock=lock, connection=connection)
    return deferrer.defer(**task_kwargs)


_QUEUED_RUN_JOBS = (
    select(column("id"))
    .select_from(table("procrastinate_jobs"))
    .where(text("task_name = :task AND status IN ('todo', 'doing')"))
)


def queued_run_ids(store: Store) -> frozenset[str]:
    """Runs whose job is waiting or executing: they have an executor, or will."""
    query = _QUEUED_RUN_JOBS.with_only_columns(text("args->>'run_id'"))
    with store.reading() as session:
        return frozenset(session.execute(query, {"task": RUN_EXPORT}).scalars())


def queue_depth(store: Store) -> dict[str, int]:
    """Jobs waiting (``todo``) in each queue, every queue named (for /metrics)."""
    with store.reading() as session:
        counts = dict(
            session.execute(
                text(
                    "SELECT queue_name, count(*) FROM procrastinate_jobs "
                    "WHERE status = 'todo' GROUP BY queue_name"
                )
            ).all()
        )
    return {queue: int(counts.get(queue, 0)) for queue in QUEUES}


class QueueDispatcher:
    """Production's dispatcher: runs are queued as they are started, executed by workers.

    ``submit`` has nothing left to do (the job was committed with the run); ``cancel`` asks
    procrastinate to abort the run's job, which reaches the worker holding it.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._app = deferring_app(store.url)
        store.listen_to_writes("after_flush", self._queue_started_runs)

    def _queue_started_runs(self, session: Session, _flush_context: Any) -> None:
        for instance in session.new:
            if isinstance(instance, Run) and instance.status == RunStatus.RUNNING.value:
                defer_on(
                    session,
                    self._app,
                    RUN_EXPORT,
                    queue=RUNS_QUEUE,
                    lock=flow_lock(instance.flow_id),
                    run_id=instance.id,
                )

    def submit(self, run_id: str) -> None:
        """Nothing to do: the run's job was committed with it."""

    def cancel(self, run_id: str) -> None:
        """Abort the run's job: a queued one is cancelled, a running one is told to stop."""
        with self._store.writing() as session:
            job_ids = list(
                session.execute(
                    _QUEUED_RUN_JOBS.where(text("args->>'run_id' = :run_id")),
                    {"task": RUN_EXPORT, "run_id": run_id},
                ).scalars()
            )
            connection = session.connection().connection.driver_connection
            for job_id in job_ids:
                self._app.job_manager.cancel_job_by_id(job_id, abort=True, connection=connection)
            session.commit()

    def owned_runs(self) -> frozenset[str]:
        """Runs belong to workers, never to an API process."""
        return frozenset()

    def record_unrecorded_outcomes(self) -> int:
        return 0

    def stop(self) -> None:
        """Nothing runs here; workers drain themselves."""
