"""Liveness and readiness of a process, the same for API processes and workers.

- **Liveness** (``/healthz``): the process answers; nothing else is asked, so a busy or
  unreachable store never gets a live process restarted.
- **Readiness** (``/readyz``): the store answers ``SELECT 1`` and its schema is at the newest
  migration, within ``READINESS_TIMEOUT_SECONDS``; a SQLite store's file must still exist.

One check of a store runs at a time (``ReadinessCheck``): callers that come while it runs
wait for its answer instead of starting another, so probes can never pile connections up on
a store that hangs. The reasons given are fixed texts: the endpoints need no token, and a
driver's message (host, user, database) is logged, never answered.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreBusy
from ..store import Store, schema_at_head
from .logs import error_summary

__all__ = [
    "READINESS_TIMEOUT_SECONDS",
    "Readiness",
    "ReadinessCheck",
    "check_store",
    "database_file_missing",
    "liveness",
]

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0
"""How long a readiness probe waits for the store before it answers "not ready"."""


@dataclass(frozen=True)
class Readiness:
    """Whether the process can serve, and if not, why (a fixed text)."""

    ready: bool
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ready


READY = Readiness(True)


def liveness(kind: str) -> dict[str, Any]:
    """The body of ``/healthz``: the process answers."""
    return {"status": "ok", "kind": kind, "pid": os.getpid()}


def database_file_missing(store: Store) -> bool:
    """Whether ``store`` is a SQLite file that is gone: connecting would create an empty one
    (or reach the removed one through a pooled connection)."""
    url = store.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return False
    return not Path(url.database).is_file()


def check_store(store: Store) -> Readiness:
    """Whether ``store`` answers and is migrated to the newest revision (unbounded: see
    ``ReadinessCheck``)."""
    if database_file_missing(store):
        return Readiness(False, "The store's database file is missing.")
    try:
        with store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            if not schema_at_head(connection):
                return Readiness(False, "The store's schema is not at the newest migration.")
    except (SQLAlchemyError, StoreBusy) as error:
        logger.warning("readiness: the store did not answer: %s", error_summary(error))
        return Readiness(False, "The store does not answer.")
    return READY


class ReadinessCheck:
    """``check()`` → ``check_store`` bounded in time, one at a time.

    The check runs in a daemon thread: a store that hangs keeps that one thread, never the
    caller (who gets "not ready" after ``timeout_seconds``) nor the process's exit.
    """

    def __init__(self, store: Store, *, timeout_seconds: float = READINESS_TIMEOUT_SECONDS):
        self.store = store
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._running: Future[Readiness] | None = None

    def check(self) -> Readiness:
        with self._lock:
            future = self._running
            if future is None or future.done():
                future = self._running = Future()
                threading.Thread(
                    target=self._run, args=(future,), name="industrydata-readiness", daemon=True
                ).start()
        try:
            return future.result(timeout=self.timeout_seconds)
        except FutureTimeout:
            return Readiness(
                False, f"The store did not answer within {self.timeout_seconds:g} seconds."
            )

    def _run(self, future: Future[Readiness]) -> None:
        try:
            future.set_result(check_store(self.store))
        except Exception as error:  # noqa: BLE001 - handed to the waiting caller
            future.set_exception(error)
