"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

On SQLite, reads use deferred transactions (WAL lets them run beside a writer) while writes
take the write lock up front (``BEGIN IMMEDIATE``), so a read-then-write transaction never
fails half-way with "database is locked". On PostgreSQL both are the same engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ..private_files import private_sqlite_database

__all__ = ["Store", "create_store_engine", "open_store"]


def create_store_engine(
    url: str, *, immediate_transactions: bool = False, pooled: bool = True
) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout.

    ``pooled=False`` closes each connection when it is returned, for code that must not keep
    a Python sqlite3 connection open while an ADBC reader uses the same file in-process.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        private_sqlite_database(Path(parsed.database))
    engine = create_engine(
        url,
        connect_args={"timeout": 60, "check_same_thread": False},
        **({} if pooled else {"poolclass": NullPool}),
    )

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

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


def open_store(url: str) -> Store:
    """Engines for ``url`` (not migrated; call ``upgrade_to_head`` first)."""
    engine = create_store_engine(url)
    if engine.dialect.name == "sqlite":
        return Store(url, engine, create_store_engine(url, immediate_transactions=True))
    return Store(url, engine, engine)
