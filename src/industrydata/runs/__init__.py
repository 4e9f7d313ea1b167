"""Runs: lifecycle in the store, execution (export to the destination), dispatch, schedule."""

from .dispatcher import EmbeddedDispatcher
from .executor import execute_run, utcnow
from .export_process import start_export_server
from .lifecycle import (
    RETRY_OF,
    RUN_CANCELLED,
    RUN_INTERRUPTED,
    RunOutcome,
    active_run,
    apply_flow_state,
    end_cancelled,
    finish_run,
    interrupt_and_retry,
    is_publishing,
    new_etag,
    purge_finished_runs,
    record_progress,
    recover_interrupted_runs,
    run_error,
    start_run,
)
from .scheduler import PeriodicWorker, latest_slot, start_due_runs

__all__ = [
    "RETRY_OF",
    "RUN_CANCELLED",
    "RUN_INTERRUPTED",
    "EmbeddedDispatcher",
    "PeriodicWorker",
    "RunOutcome",
    "active_run",
    "apply_flow_state",
    "end_cancelled",
    "execute_run",
    "finish_run",
    "interrupt_and_retry",
    "is_publishing",
    "latest_slot",
    "new_etag",
    "purge_finished_runs",
    "record_progress",
    "recover_interrupted_runs",
    "run_error",
    "start_due_runs",
    "start_export_server",
    "start_run",
    "utcnow",
]
