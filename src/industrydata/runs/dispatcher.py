"""The embedded dispatcher: runs execute in threads of the serving process.

It knows which runs this process owns: those executing in its threads and those whose
outcome found the store busy and waits to be written (``record_unrecorded_outcomes``, called
by the periodic tick). A run marked ``running`` in the store that it does not own has no
executor left, so the tick may recover it (``recover_interrupted_runs(owned=...)``).

Each executing run has a stop event of its own: ``cancel`` sets one (the run was cancelled in
the store), ``stop`` sets them all (the service stops); the executor stops its export child
within a fraction of a second of either.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from ..config import Settings
from ..errors import StoreBusy
from ..states import RunStatus
from ..store import CredentialSealer, Store
from .executor import execute_run
from .lifecycle import RunOutcome

__all__ = ["EmbeddedDispatcher"]

logger = logging.getLogger(__name__)


class EmbeddedDispatcher:
    """Executes submitted runs on a small thread pool; ``cancel`` interrupts one of them,
    ``stop`` all of them, cleanly."""

    def __init__(
        self, *, store: Store, settings: Settings, sealer: CredentialSealer, workers: int = 2
    ) -> None:
        self._store = store
        self._settings = settings
        self._sealer = sealer
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="industrydata-run")
        self._lock = threading.Lock()
        self._executing: dict[str, threading.Event] = {}
        """Runs submitted and not yet ended, each with the event that stops its executor."""
        self._unrecorded: dict[str, RunOutcome] = {}

    def submit(self, run_id: str) -> Future[RunStatus | None]:
        """Start executing ``run_id`` (already committed as running) in the background."""
        stop = threading.Event()
        with self._lock:
            if self._stopping.is_set():
                stop.set()
            self._executing[run_id] = stop
        try:
            return self._pool.submit(self._execute, run_id, stop)
        except RuntimeError:
            with self._lock:
                self._executing.pop(run_id, None)
            raise

    def cancel(self, run_id: str) -> None:
        """Stop the executor of ``run_id`` now; call once the run's end is committed (its
        executor then records nothing). A run this process does not execute is left alone."""
        with self._lock:
            stop = self._executing.get(run_id)
        if stop is not None:
            stop.set()

    def owned_runs(self) -> frozenset[str]:
        """Runs this process still answers for: executing, or with an outcome to write."""
        with self._lock:
            return frozenset(self._executing.keys() | self._unrecorded.keys())

    def record_unrecorded_outcomes(self) -> int:
        """Write the outcomes that found the store busy; those still busy stay. How many
        left the list."""
        with self._lock:
            waiting = list(self._unrecorded.values())
        done = 0
        for outcome in waiting:
            try:
                outcome.record(self._store)
            except StoreBusy:
                continue
            with self._lock:
                self._unrecorded.pop(outcome.run_id, None)
            done += 1
        return done

    def _keep_unrecorded(self, outcome: RunOutcome) -> None:
        with self._lock:
            self._unrecorded[outcome.run_id] = outcome

    def _execute(self, run_id: str, stop: threading.Event) -> RunStatus | None:
        try:
            return execute_run(
                run_id,
                store=self._store,
                settings=self._settings,
                sealer=self._sealer,
                stopping=stop,
                on_unrecorded=self._keep_unrecorded,
            )
        except Exception:
            logger.exception("run %s could not be executed", run_id)
            raise
        finally:
            with self._lock:
                self._executing.pop(run_id, None)

    def stop(self) -> None:
        """Interrupt running runs at their next table, wait for the threads to end, and try
        once more to write outcomes still waiting (a run left unwritten is recovered at the
        next start)."""
        with self._lock:
            self._stopping.set()
            for stop in self._executing.values():
                stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.record_unrecorded_outcomes()
