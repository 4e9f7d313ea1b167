"""What workers execute: runs, loads and the periodic work, as procrastinate tasks.

The task bodies are the embedded mode's functions (``execute_run``, ``start_due_runs``,
``expire_pending_invitations``, ``purge_finished_runs``); only who calls them differs.
Periodic tasks are deferred by every worker for each cron tick, and procrastinate's unique
``(task, periodic id, tick)`` row lets exactly one of those deferrals through, so each fires
once per period however many processes are up.

Retry policy: a run whose worker died (its heartbeat stalled past
``worker_stalled_seconds``) or was drained past ``worker_drain_seconds`` ends ``failed`` with
``runInterrupted``, and one new run of the flow is started at once (``interrupt_and_retry``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import procrastinate
from procrastinate import JobContext
from procrastinate.exceptions import JobAborted
from procrastinate.job_context import AbortReason
from procrastinate.jobs import Status

from ..config import Settings
from ..observability import log_context
from ..runs import (
    execute_run,
    interrupt_and_retry,
    purge_finished_runs,
    recover_interrupted_runs,
    start_due_runs,
    utcnow,
)
from ..sharing import expire_pending_invitations
from ..store import CredentialSealer, Store
from .loads import execute_load, fail_load
from .queue import (
    IMPORTS_QUEUE,
    LOAD_IMPORT,
    PERIODIC_QUEUE,
    RUN_EXPORT,
    RUNS_QUEUE,
    queued_run_ids,
)

__all__ = ["WorkerContext", "every", "register_tasks"]

logger = logging.getLogger(__name__)

ABORT_POLL_SECONDS = 0.5

PERIODIC_JOBS_KEPT_HOURS = 24
"""Finished jobs of the periodic queue are deleted after a day (those of runs and imports
with the run history)."""

HEARTBEAT_STALE_AFTER = timedelta(minutes=5)
"""A run still ``running`` with neither a queued job nor a heartbeat for this long has no
executor (a run left from embedded mode, or by a job that failed without ending it)."""


@dataclass(frozen=True)
class WorkerContext:
    store: Store
    settings: Settings
    sealer: CredentialSealer


def every(seconds: int) -> str:
    """A procrastinate cron for every ``seconds`` (a divisor of 60, or 60)."""
    return "* * * * *" if seconds >= 60 else f"* * * * * */{seconds}"


def register_tasks(app: procrastinate.App, worker: WorkerContext) -> None:
    """Register the runs and periodic tasks on ``app`` over the worker's store."""
    settings = worker.settings

    def periodic(name: str, cron: str) -> Callable[[Any], Any]:
        """A periodic task of the periodic queue, doing its work once a tick.

        procrastinate lets one deferral of a tick through while the tick is the newest; a
        worker whose deferrer lags a tick behind (a loaded machine) can defer it again. The
        lock keeps a task's jobs one after another, oldest first; a later job of a tick
        that already had one ends ``aborted`` without doing the work.
        """

        def register(work: Callable[[JobContext, int], Awaitable[None]]) -> Any:
            async def once_a_tick(context: JobContext, timestamp: int) -> None:
                if await _tick_already_had_a_job(context, name, timestamp):
                    raise JobAborted(f"{name} already ran for the tick {timestamp}")
                await work(context, timestamp)

            once_a_tick.__name__ = work.__name__
            task = app.task(name=name, queue=PERIODIC_QUEUE, lock=name, pass_context=True)(
                once_a_tick
            )
            return app.periodic(cron=cron)(task)

        return register

    @app.task(name=RUN_EXPORT, queue=RUNS_QUEUE, pass_context=True)
    def run_export(context: JobContext, run_id: str) -> None:
        stopping = threading.Event()
        finished = threading.Event()
        watcher = threading.Thread(
            target=_stop_when_aborted,
            args=(context, stopping, finished),
            name=f"industrydata-abort-{context.job.id}",
            daemon=True,
        )
        watcher.start()
        try:
            with log_context(job_id=str(context.job.id)):
                execute_run(
                    run_id,
                    store=worker.store,
                    settings=settings,
                    sealer=worker.sealer,
                    stopping=stopping,
                )
        finally:
            finished.set()
            watcher.join()
        reason = context.abort_reason()
        if reason is AbortReason.SHUTDOWN:
            interrupt_and_retry(
                worker.store,
                run_id,
                now=utcnow(),
                message="The run was interrupted: its worker was stopped before it finished.",
            )
        elif reason is AbortReason.USER_REQUEST:
            raise JobAborted(f"run {run_id} was cancelled")

    @app.task(name=LOAD_IMPORT, queue=IMPORTS_QUEUE, pass_context=True)
    def load_import(context: JobContext, load_id: str) -> None:
        try:
            with log_context(job_id=str(context.job.id)):
                execute_load(worker.store, load_id, clock=utcnow)
        except Exception:
            fail_load(
                worker.store,
                load_id,
                code="generalException",
                message="The load failed because of an internal error.",
                now=utcnow(),
            )
            raise

    @periodic("industrydata.start_scheduled_runs", every(int(settings.scheduler_interval_seconds)))
    async def start_scheduled_runs(context: JobContext, timestamp: int) -> None:
        started = await asyncio.to_thread(start_due_runs, worker.store, now=utcnow())
        if started:
            logger.info("started %d scheduled run(s)", len(started))

    @periodic("industrydata.expire_invitations", every(60))
    async def expire_invitations(context: JobContext, timestamp: int) -> None:
        await asyncio.to_thread(expire_pending_invitations, worker.store, now=utcnow())

    @periodic("industrydata.purge_run_history", "0 * * * *")
    async def purge_run_history(context: JobContext, timestamp: int) -> None:
        older_than = utcnow() - timedelta(days=settings.run_history_days)
        await asyncio.to_thread(purge_finished_runs, worker.store, older_than=older_than)
        for queue, hours in (
            (RUNS_QUEUE, settings.run_history_days * 24),
            (IMPORTS_QUEUE, settings.run_history_days * 24),
            (PERIODIC_QUEUE, PERIODIC_JOBS_KEPT_HOURS),
        ):
            await context.app.job_manager.delete_old_jobs(
                nb_hours=hours,
                queue=queue,
                include_failed=True,
                include_cancelled=True,
                include_aborted=True,
            )

    @periodic("industrydata.recover_stalled_runs", every(settings.worker_recovery_seconds))
    async def recover_stalled_runs(context: JobContext, timestamp: int) -> None:
        manager = context.app.job_manager
        stalled = await manager.get_stalled_jobs(
            seconds_since_heartbeat=settings.worker_stalled_seconds
        )
        for job in stalled:
            if job.task_name == RUN_EXPORT:
                await asyncio.to_thread(
                    interrupt_and_retry,
                    worker.store,
                    str(job.task_kwargs["run_id"]),
                    now=utcnow(),
                    message="The run was interrupted: its worker stopped answering.",
                )
            elif job.task_name == LOAD_IMPORT:
                await asyncio.to_thread(
                    fail_load,
                    worker.store,
                    str(job.task_kwargs["load_id"]),
                    code="loadInterrupted",
                    message="The load was interrupted: its worker stopped answering. Nothing "
                    "of it was applied; queue it again.",
                    now=utcnow(),
                )
            assert job.id is not None
            await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
            logger.warning("job %s (%s) of a dead worker was failed", job.id, job.task_name)
        now = utcnow()
        await asyncio.to_thread(
            recover_interrupted_runs,
            worker.store,
            now=now,
            stale_before=now - HEARTBEAT_STALE_AFTER,
            owned=await asyncio.to_thread(queued_run_ids, worker.store),
        )


async def _tick_already_had_a_job(context: JobContext, task_name: str, timestamp: int) -> bool:
    row = await context.app.job_manager.connector.execute_query_one_async(
        query="SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE task_name = %(task)s "
        "AND args->>'timestamp' = %(tick)s AND id < %(id)s) AS earlier",
        task=task_name,
        tick=str(timestamp),
        id=context.job.id,
    )
    return bool(row["earlier"])


def _stop_when_aborted(
    context: JobContext, stopping: threading.Event, finished: threading.Event
) -> None:
    """Carry procrastinate's abort request (a cancel, or the worker's drain running out)
    to the executor's stop event."""
    while not finished.wait(ABORT_POLL_SECONDS):
        if context.should_abort():
            stopping.set()
            return
