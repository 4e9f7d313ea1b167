"""Hold the store's write lock from a second, real connection (what a long import does)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def write_lock_held(store_url: str, *tables: str) -> Iterator[None]:
    """While open, no other transaction can write: on SQLite a connection holds
    ``BEGIN IMMEDIATE`` (the whole file); on PostgreSQL one holds ``SHARE`` locks on
    ``tables`` (reads pass, inserts, updates and deletes wait). Rolled back on exit."""
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.rollback()
            connection.close()
        return
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            for table in tables:
                connection.execute(text(f'LOCK TABLE "{table}" IN SHARE MODE'))
            try:
                yield
            finally:
                transaction.rollback()
    finally:
        engine.dispose()
