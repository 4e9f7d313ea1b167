"""Lock contention is translated in one place: a bounded wait, then ``StoreBusy``."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from industrydata.errors import StoreBusy
from industrydata.store import Store, open_store, retry_while_busy
from tests.contention import write_lock_held


@pytest.fixture
def store(store_url: str) -> Store:
    store = open_store(store_url, lock_wait_seconds=0.3)
    yield store
    store.dispose()


def _rename_flows(store: Store) -> None:
    with store.writing() as session:
        session.execute(text("UPDATE flow SET display_name = 'x'"))
        session.execute(text("DELETE FROM run"))
        session.commit()


def test_a_write_waits_the_bound_then_raises_store_busy(store: Store, store_url: str) -> None:
    with write_lock_held(store_url, "flow", "run"):
        started = time.monotonic()
        with pytest.raises(StoreBusy) as raised:
            _rename_flows(store)
        elapsed = time.monotonic() - started

    assert 0.3 <= elapsed < 2
    assert raised.value.status == 503
    assert raised.value.retry_after_seconds == 1
    _rename_flows(store)


def test_retry_while_busy_gives_up_after_its_window(store: Store, store_url: str) -> None:
    attempts = []

    def attempt() -> None:
        attempts.append(time.monotonic())
        _rename_flows(store)

    with write_lock_held(store_url, "flow", "run"):
        with pytest.raises(StoreBusy):
            retry_while_busy(attempt, within_seconds=0.5, first_pause_seconds=0.05)

    assert len(attempts) >= 2
    assert retry_while_busy(lambda: _rename_flows(store), within_seconds=0.5) is None
