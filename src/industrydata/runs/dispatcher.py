"""The embedded dispatcher: runs execute in threads of the serving process."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from ..config import Settings
from ..states import RunStatus
from ..store import CredentialSealer, Store
from .executor import execute_run

__all__ = ["EmbeddedDispatcher"]

logger = logging.getLogger(__name__)


class EmbeddedDispatcher:
    """Executes submitted runs on a small thread pool; ``stop`` interrupts them cleanly."""

    def __init__(
        self, *, store: Store, settings: Settings, sealer: CredentialSealer, workers: int = 2
    ) -> None:
        self._store = store
        self._settings = settings
        self._sealer = sealer
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="industrydata-run")

    def submit(self, run_id: str) -> Future[RunStatus | None]:
        """Start executing ``run_id`` (already committed as running) in the background."""
        return self._pool.submit(self._execute, run_id)

    def _execute(self, run_id: str) -> RunStatus | None:
        try:
            return execute_run(
                run_id,
                store=self._store,
                settings=self._settings,
                sealer=self._sealer,
                stopping=self._stopping,
            )
        except Exception:
            logger.exception("run %s could not be executed", run_id)
            raise

    def stop(self) -> None:
        """Interrupt running runs at their next table and wait for the threads to end."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
