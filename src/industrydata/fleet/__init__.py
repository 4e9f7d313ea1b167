"""Production mode: the task queue (procrastinate on the store's PostgreSQL) and its workers."""

from .listing import QueuedJob, queued_jobs
from .loads import LOAD_FORMATS, LoadStatus, enqueue_load
from .queue import QUEUES, QueueDispatcher, queue_depth, queued_run_ids
from .worker import run_worker

__all__ = [
    "LOAD_FORMATS",
    "QUEUES",
    "LoadStatus",
    "QueueDispatcher",
    "QueuedJob",
    "enqueue_load",
    "queue_depth",
    "queued_jobs",
    "queued_run_ids",
    "run_worker",
]
