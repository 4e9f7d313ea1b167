"""Applying a load on SQLite without keeping every other writer out for its whole length.

SQLite has one write lock per database file: a load written in one transaction keeps every
API write waiting for minutes. So on SQLite a load goes in two steps:

1. **Read into a spool.** The upload is read, validated and turned into canonical row chunks
   (in a child process when large) that go to a temporary file (``RowSpool``), not to the
   store: nothing is locked, and a load refused while reading has written nothing.
2. **Apply in slices.** The chunks are upserted (``TableUpsert``, unchanged) in transactions
   of about ``APPLY_SLICE_SECONDS``, each followed by a pause of ``APPLY_PAUSE_SECONDS`` that
   lets a waiting writer take the lock. The first transaction takes the tenant's change
   version and puts the tenant in ``canonical_loads_applying`` (the fence); the last ones
   clear the presence flags of rows the load did not write, and the very last removes the
   fence, so a reader that honours the fence (the export) sees the load whole or not at all.

A load that fails while applying leaves the rows it applied and the fence: the tenant's
exports wait until a later load of the tenant completes (a full load rewrites every row it
holds, so it repairs the half-applied one). A second load of a tenant whose fence was renewed
within ``FENCE_STALE_AFTER`` is refused; an older fence belongs to a dead load and is taken
over. On PostgreSQL (row locks) a load stays one transaction and never sets the fence.
"""

from __future__ import annotations

import marshal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.sqlite import insert

from ...errors import LoadError
from ..sql import CANONICAL_LOADS_APPLYING

__all__ = [
    "APPLY_PAUSE_SECONDS",
    "APPLY_SLICE_SECONDS",
    "FENCE_STALE_AFTER",
    "LoadFence",
    "RowSpool",
    "SliceClock",
]

APPLY_SLICE_SECONDS = 0.2
"""How long one transaction of a sliced load writes before it commits."""

APPLY_PAUSE_SECONDS = 0.1
"""The pause after each slice. SQLite's busy handler sleeps up to 100 ms between tries of a
waiting writer, so a shorter pause may pass without anyone getting in."""

FENCE_STALE_AFTER = timedelta(minutes=2)
"""A fence not renewed for this long belongs to a load that died."""


class RowSpool:
    """Row chunks of a load in a temporary file, in the order they were read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: BinaryIO = path.open("wb")

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        marshal.dump((table, rows), self._file)

    def chunks(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """The chunks written, read back one at a time."""
        self._file.close()
        with self._path.open("rb") as spooled:
            while True:
                try:
                    yield marshal.load(spooled)
                except EOFError:
                    return

    def close(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class LoadFence:
    """The tenant's row in ``canonical_loads_applying`` while its load is applied."""

    def __init__(self, connection: Connection, tenant_id: str) -> None:
        self._connection = connection
        self._tenant_id = tenant_id
        self._table = CANONICAL_LOADS_APPLYING

    def take(self, version: int, now: datetime) -> None:
        """Fence the tenant for the load of ``version`` (in the caller's transaction).

        Raises:
            LoadError: another load of the tenant is being applied.
        """
        fence = self._table
        touched = self._connection.execute(
            select(fence.c.touched_at).where(fence.c.tenant_id == self._tenant_id)
        ).scalar_one_or_none()
        if touched is not None and touched > now - FENCE_STALE_AFTER:
            raise LoadError("another load of this tenant is being applied; try again when it ends")
        values = {"version": version, "started_at": now, "touched_at": now}
        self._connection.execute(
            insert(fence)
            .values(tenant_id=self._tenant_id, **values)
            .on_conflict_do_update(index_elements=[fence.c.tenant_id], set_=values)
        )

    def renew(self, now: datetime) -> None:
        fence = self._table
        self._connection.execute(
            fence.update().where(fence.c.tenant_id == self._tenant_id).values(touched_at=now)
        )

    def remove(self) -> None:
        fence = self._table
        self._connection.execute(delete(fence).where(fence.c.tenant_id == self._tenant_id))


class SliceClock:
    """Says when the current slice has written long enough to commit, and pauses after it."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._started >= APPLY_SLICE_SECONDS

    def pause(self) -> None:
        """Between two slices (the lock is free): let a waiting writer in, then go on."""
        time.sleep(APPLY_PAUSE_SECONDS)
        self._started = time.monotonic()
