"""Production mode: the task queue (procrastinate on the store's PostgreSQL) and its workers."""

from .queue import QUEUES, QueueDispatcher, queued_run_ids
from .worker import run_worker

__all__ = ["QUEUES", "QueueDispatcher", "queued_run_ids", "run_worker"]
