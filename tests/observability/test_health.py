"""Readiness of a store: it answers SELECT 1 at the newest migration, within a bound, one
check at a time; the reasons are fixed texts that name no host."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from industrydata.observability import ReadinessCheck, check_store, liveness
from industrydata.store import Store, open_store
from tests.observability.scrape import closed_port_postgres_url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    yield store
    store.dispose()


def test_liveness_names_the_kind_and_the_process() -> None:
    body = liveness("worker")

    assert body["status"] == "ok" and body["kind"] == "worker"
    assert isinstance(body["pid"], int) and body["pid"] > 0


def test_a_migrated_store_is_ready_and_checking_it_logs_nothing(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert ReadinessCheck(store).check().ready

    assert caplog.records == []  # probes come every few seconds: no line each time


def test_a_store_never_migrated_is_not_ready(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        readiness = check_store(store)
    finally:
        store.dispose()

    assert readiness.reason == "The store's schema is not at the newest migration."


def test_a_store_behind_the_newest_migration_is_not_ready(store: Store) -> None:
    with store.writing() as session:
        head = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    try:
        with store.writing() as session:
            session.execute(text("UPDATE alembic_version SET version_num = '0004_load_fence'"))
            session.commit()

        readiness = check_store(store)
    finally:
        with store.writing() as session:
            session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
            session.commit()

    assert not readiness
    assert readiness.reason == "The store's schema is not at the newest migration."


def test_an_unreachable_store_is_not_ready_and_its_reason_names_no_host() -> None:
    url = closed_port_postgres_url()
    store = open_store(url)
    try:
        readiness = ReadinessCheck(store).check()
    finally:
        store.dispose()

    assert not readiness.ready
    assert readiness.reason == "The store does not answer."


def test_a_removed_sqlite_file_is_not_ready_and_is_not_created_again(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    store = open_store(f"sqlite:///{database}")
    try:
        database.unlink()
        readiness = check_store(store)
    finally:
        store.dispose()

    assert readiness.reason == "The store's database file is missing."
    assert not database.exists()


class SilentServer:
    """A loopback port that accepts connections and never answers (a store that hangs)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept
        self.listener.close()
        for connection in self.accepted:
            connection.close()
        self._thread.join(timeout=5)


def test_a_store_that_hangs_is_not_ready_within_the_bound_and_checked_once() -> None:
    silent = SilentServer()
    store = open_store(f"postgresql+psycopg://postgres@127.0.0.1:{silent.port}/test")
    check = ReadinessCheck(store, timeout_seconds=0.5)
    try:
        started = time.monotonic()
        first = check.check()
        second = check.check()
        elapsed = time.monotonic() - started
        connections = len(silent.accepted)
    finally:
        silent.close()
        store.dispose()

    assert not first and not second
    assert first.reason == "The store did not answer within 0.5 seconds."
    assert 1.0 <= elapsed < 3.0
    assert connections == 1  # the second probe waited for the first check, started no other


def test_a_check_after_the_store_came_back_is_ready(store: Store) -> None:
    check = ReadinessCheck(store)

    assert check.check() and check.check()
