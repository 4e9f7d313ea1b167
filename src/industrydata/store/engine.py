"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

On SQLite, reads use deferred transactions (WAL lets them run beside a writer) while writes
take the write lock up front (``BEGIN IMMEDIATE``), so a read-then-write transaction never
fails half-way with "database is locked". On PostgreSQL reads and writes are separate engines
only so that writes carry the lock wait as ``lock_timeout``.

Lock contention is bounded: a writer waits at most ``lock_wait_seconds`` for the write lock
(SQLite's busy timeout) or a row lock (PostgreSQL's ``lock_timeout``), then gets ``StoreBusy``,
which the API answers with 503 and ``Retry-After``. Every engine translates contention here,
in one place (``is_lock_contention``), so no caller sees a driver's OperationalError for it.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ..errors import StoreBusy
from ..private_files import private_sqlite_database

__all__ = [
    "MAINTENANCE_LOCK_WAIT_SECONDS",
    "Store",
    "create_store_engine",
    "is_lock_contention",
    "open_store",
    "retry_while_busy",
]

logger = logging.getLogger(__name__)

MAINTENANCE_LOCK_WAIT_SECONDS = 60.0
"""Lock wait of work nobody is waiting on (migrations, imports from the CLI)."""

_SQLITE_CONTENTION = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_POSTGRES_CONTENTION = {
    "55P03",  # lock_not_available: lock_timeout expired
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
}

T = TypeVar("T")


def is_lock_contention(error: BaseException | None) -> bool:
    """Whether a driver error means "another transaction holds what this one needs"."""
    if isinstance(error, sqlite3.OperationalError):
        return error.sqlite_errorcode & 0xFF in _SQLITE_CONTENTION  # extended codes too
    return getattr(error, "sqlstate", None) in _POSTGRES_CONTENTION


def _busy_error(lock_wait_seconds: float) -> StoreBusy:
    retry_after = max(1, math.ceil(lock_wait_seconds))
    return StoreBusy(
        f"The service is busy writing; try again in {retry_after} seconds.",
        retry_after_seconds=retry_after,
    )


def create_store_engine(
    url: str,
    *,
    immediate_transactions: bool = False,
    pooled: bool = True,
    lock_wait_seconds: float = MAINTENANCE_LOCK_WAIT_SECONDS,
) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout.

    ``lock_wait_seconds`` bounds how long a statement waits for a lock before ``StoreBusy``.
    ``pooled=False`` closes each connection when it is returned, for code that must not keep
    a Python sqlite3 connection open while an ADBC reader uses the same file in-process.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        lock_timeout_ms = max(1, int(lock_wait_seconds * 1000))
        engine = create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"options": f"-c lock_timeout={lock_timeout_ms}"},
        )
        _translate_contention(engine, lock_wait_seconds)
        return engine
    if parsed.database and parsed.database != ":memory:":
        private_sqlite_database(Path(parsed.database))
    engine = create_engine(
        url,
        connect_args={"timeout": lock_wait_seconds, "check_same_thread": False},
        **({} if pooled else {"poolclass": NullPool}),
    )
    _translate_contention(engine, lock_wait_seconds)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate_transactions else "BEGIN"

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql(begin)

    return engine


def _translate_contention(engine: Engine, lock_wait_seconds: float) -> None:
    @event.listens_for(engine, "handle_error")
    def _contention(context: ExceptionContext) -> None:
        if is_lock_contention(context.original_exception):
            raise _busy_error(lock_wait_seconds) from context.sqlalchemy_exception


def retry_while_busy(
    operation: Callable[[], T],
    *,
    within_seconds: float,
    first_pause_seconds: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``operation()``, tried again with doubling pauses while it raises ``StoreBusy``, until
    ``within_seconds`` have passed (then the last ``StoreBusy`` is raised)."""
    deadline = time.monotonic() + within_seconds
    pause = first_pause_seconds
    while True:
        try:
            return operation()
        except StoreBusy:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            logger.info("store busy; trying again in %.1f s", min(pause, remaining))
            sleep(min(pause, remaining))
            pause = min(pause * 2, 5.0)


@dataclass
class Store:
    """The service's database: a session factory for reads and one for writes."""

    url: str
    engine: Engine
    write_engine: Engine

    def __post_init__(self) -> None:
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(self.write_engine, expire_on_commit=False)

    def reading(self) -> Session:
        """A session for requests that only read."""
        return self._reads()

    def writing(self) -> Session:
        """A session whose transactions may write (serialised on SQLite)."""
        return self._writes()

    def listen_to_writes(self, event_name: str, listener: Callable[..., None]) -> None:
        """Call ``listener`` on the session event ``event_name`` of every writing session
        (production mode queues each started run's job in the run's own transaction)."""
        event.listen(self._writes, event_name, listener)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


def open_store(url: str, *, lock_wait_seconds: float = MAINTENANCE_LOCK_WAIT_SECONDS) -> Store:
    """Engines for ``url`` (not migrated; call ``upgrade_to_head`` first) whose writes wait
    at most ``lock_wait_seconds`` for a lock (the serving process: a few seconds)."""
    reads = create_store_engine(url, lock_wait_seconds=lock_wait_seconds)
    writes = create_store_engine(
        url, immediate_transactions=True, lock_wait_seconds=lock_wait_seconds
    )
    return Store(url, reads, writes)
