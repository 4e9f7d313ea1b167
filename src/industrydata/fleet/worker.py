"""``industrydata worker``: one process executing jobs of the task queue until stopped.

It runs two procrastinate workers on one event loop: one for runs and imports (``concurrency``
jobs at once, each run exporting in a child process of its own) and one for the periodic
queue, so the periodic work (schedules, recovery of dead workers' runs) never waits behind
long exports. SIGTERM or SIGINT drains: jobs get ``worker_drain_seconds`` to finish, then
are interrupted (a run is retried once by another worker), and the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from functools import partial

from ..config import Settings
from ..observability import HealthServer, Readiness, ReadinessCheck, render_metrics
from ..runs import start_export_server
from ..store import CredentialSealer, Store, open_store
from .queue import PERIODIC_QUEUE, QUEUES, QueueDispatcher, queue_depth, task_queue_app
from .tasks import WorkerContext, register_tasks

__all__ = ["run_worker"]

logger = logging.getLogger(__name__)


def run_worker(
    settings: Settings,
    *,
    concurrency: int = 1,
    queues: Sequence[str] = QUEUES,
    health_address: tuple[str, int] | None = None,
) -> None:
    """Execute jobs of ``queues`` until SIGTERM/SIGINT; returns once drained.

    With ``health_address`` (host, port) the worker answers ``/healthz``, ``/readyz`` (it
    takes jobs and the store answers) and ``/metrics`` there.
    """
    exports_ready = start_export_server()
    store = open_store(
        settings.effective_database_url, lock_wait_seconds=settings.store_lock_wait_seconds
    )
    running = threading.Event()
    health = None
    if health_address is not None:
        readiness = ReadinessCheck(store)
        health = HealthServer(
            *health_address,
            ready=lambda: _ready(readiness, running, exports_ready),
            metrics=lambda: render_metrics(store, partial(queue_depth, store)),
        )
        health.start()
    try:
        asyncio.run(_work(settings, store, concurrency=concurrency, queues=queues, running=running))
    finally:
        if health is not None:
            health.stop()
        store.dispose()


def _ready(
    readiness: ReadinessCheck, running: threading.Event, exports_ready: threading.Event
) -> Readiness:
    if not running.is_set():
        return Readiness(False, "The worker is not taking jobs (starting or draining).")
    if not exports_ready.is_set():
        return Readiness(False, "The worker's export server is starting.")
    return readiness.check()


async def _work(
    settings: Settings,
    store: Store,
    *,
    concurrency: int,
    queues: Sequence[str],
    running: threading.Event,
) -> None:
    QueueDispatcher(store)  # runs started here (schedules, retries) are queued with them
    sealer = CredentialSealer(settings.data_dir / "keys" / "credential.key")
    app = task_queue_app(settings.effective_database_url, pool_size=concurrency + 4)
    register_tasks(app, WorkerContext(store=store, settings=settings, sealer=sealer))
    name = f"{socket.gethostname()}:{os.getpid()}"
    common = dict(
        install_signal_handlers=False,
        shutdown_graceful_timeout=settings.worker_drain_seconds,
        update_heartbeat_interval=settings.worker_heartbeat_seconds,
        stalled_worker_timeout=settings.worker_stalled_seconds,
    )
    job_queues = [queue for queue in queues if queue != PERIODIC_QUEUE]
    async with app.open_async():
        workers = []
        if job_queues:
            workers.append(
                asyncio.create_task(
                    app.run_worker_async(
                        queues=job_queues, concurrency=concurrency, name=name, **common
                    )
                )
            )
        if PERIODIC_QUEUE in queues:
            workers.append(
                asyncio.create_task(
                    app.run_worker_async(
                        queues=[PERIODIC_QUEUE], concurrency=1, name=f"{name}:periodic", **common
                    )
                )
            )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _drain, signum, workers, running)
        logger.info("worker %s serving queues %s", name, ", ".join(queues))
        running.set()
        results = await asyncio.gather(*workers, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                logger.error("worker stopped on an error: %s", result)
    logger.info("worker %s stopped", name)


def _drain(signum: int, workers: list[asyncio.Task[None]], running: threading.Event) -> None:
    running.clear()
    logger.info("%s: draining", signal.Signals(signum).name)
    for worker in workers:
        worker.cancel()
