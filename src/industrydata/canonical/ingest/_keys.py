"""The keys a reader remembers, in a few bytes each: duplicate detection and references.

A load must remember every key it has seen: which records a file already held (a duplicate is
rejected, naming the line of the first) and which users, classes ... exist (a reference to one
that does not is a problem). Python dicts of the keys cost 180 to 260 bytes per key, so a
large district (or a drop of millions of valid records) took a process past 512 MiB. Here a
key is a 128-bit fingerprint in flat arrays:

- ``KeyTable``: an open-addressing hash table of fingerprints (16 bytes a slot, 20 with a
  value such as a line number), at most four fifths full.
- ``KnownIds``: the canonical ids minted for a file's source keys, for references.

Every table of a load draws on one ``KeyBudget`` (``ReadLimits.max_key_memory``). A table
that would outgrow its share spills its fingerprints to disk as a sorted run
(``_key_runs``) and starts again empty; look-ups then also ask its runs. So a load's
memory stays bounded whatever the number of distinct keys; a district's tables of fewer
than 800,000 keys never touch the disk.

(The ids a writer wrote go to a temporary table of its connection: ``_upsert``.)

Exactness. A ``KeyTable`` compares 127 bits
of a fingerprint: of a source key, BLAKE2b (``fingerprint``); of a canonical id, the id's own
bits (``id_fingerprint``, 121 bits, as random as the UUID v5 it is). Two different keys are
taken for one only when their fingerprints collide: for n keys the chance is below
n² / 2^122, under 10^-20 for a hundred million keys. A canonical id collision would already
merge two records in the store, whose primary keys are these ids.
"""

from __future__ import annotations

import hashlib
import weakref
from array import array
from typing import Protocol

import numpy as np

from ..ids import IdMinter, composite_key
from ._key_runs import SortedRun, merged, sorted_chunks
from ._limits import DEFAULT_LIMITS

__all__ = [
    "KeyBudget",
    "KeyLookup",
    "KeyTable",
    "KnownIds",
    "fingerprint",
    "id_fingerprint",
]

_LOW = (1 << 64) - 1
_TAKEN = 1 << 63
"""Set in every stored high word: a zero high word marks a free slot."""
_MAX_LOAD = 0.8
"""Linear probing still finds a free slot in a few probes on average (13 at the limit)."""
_FIRST_CAPACITY = 1 << 10
_SMALL_VALUES = "I"
"""Values take 4 bytes until one does not fit (a line past 4,294,967,295), then 8."""
_SMALL_LIMIT = (1 << 32) - 1
_GROW_BLOCK = 1 << 18
"""Slots moved at a time when the table grows: bounds numpy's temporary arrays."""


_TABLE_SHARE = 4
"""A table's slots take at most this fraction of the budget: spilling sorts a copy of
them, which must fit beside the rest."""


class KeyBudget:
    """The memory the key tables of one load share: their slots, and their runs' fences and
    filters. A table that needs more than is left spills the largest table first (itself,
    when it is the largest)."""

    def __init__(self, limit: int = DEFAULT_LIMITS.max_key_memory) -> None:
        self.limit = limit
        self._tables: weakref.WeakSet[KeyTable] = weakref.WeakSet()

    def join(self, table: KeyTable) -> None:
        self._tables.add(table)

    @property
    def used(self) -> int:
        return sum(table.nbytes for table in self._tables)

    def room(self) -> int:
        """Bytes not yet taken."""
        return max(0, self.limit - self.used)

    def allows_growth(self, table: KeyTable) -> bool:
        """Whether ``table`` may double its slots, once larger tables have spilled."""
        grown = 2 * table.slot_bytes
        if grown > self.limit // _TABLE_SHARE:
            return False
        while self.used + table.slot_bytes > self.limit:
            largest = max(self._tables, key=lambda other: other.slot_bytes)
            if largest is table or largest.slot_bytes <= table.slot_bytes:
                return False
            largest.spill()
        return True


def fingerprint(*parts: str) -> int:
    """128 bits of BLAKE2b of a key made of ``parts`` (unambiguous: ``composite_key``)."""
    digest = hashlib.blake2b(composite_key(*parts).encode(), digest_size=16).digest()
    return int.from_bytes(digest)


def id_fingerprint(canonical_id: str) -> int:
    """The 128 bits of a canonical id (UUID text)."""
    return int(canonical_id.replace("-", ""), 16)


class KeyTable:
    """A set of 128-bit fingerprints, each with an optional value (an integer from 0), in flat
    arrays: 16 bytes a slot (20 with values), between 2/5 and 4/5 of the slots taken; beyond
    its share of ``budget``, in sorted runs on disk as well."""

    __slots__ = (
        "__weakref__",
        "_budget",
        "_count",
        "_high",
        "_limit",
        "_low",
        "_mask",
        "_runs",
        "_spilled",
        "_values",
    )

    def __init__(self, *, values: bool = False, budget: KeyBudget | None = None) -> None:
        self._values: array[int] | None = array(_SMALL_VALUES) if values else None
        self._allocate(_FIRST_CAPACITY)
        self._count = 0
        self._runs: list[SortedRun] = []
        self._spilled = 0
        self._budget = budget if budget is not None else KeyBudget()
        self._budget.join(self)

    def __len__(self) -> int:
        return self._count + self._spilled

    def __contains__(self, key: int) -> bool:
        return self.get(key) is not None

    @property
    def slot_bytes(self) -> int:
        """Bytes of the slots in memory."""
        size = self._high.itemsize + self._low.itemsize
        if self._values is not None:
            size += self._values.itemsize
        return size * len(self._high)

    @property
    def nbytes(self) -> int:
        """Bytes the table holds in memory: its slots, its runs' fences and filters."""
        return self.slot_bytes + sum(run.nbytes for run in self._runs)

    @property
    def runs(self) -> int:
        """Sorted runs on disk."""
        return len(self._runs)

    def get(self, key: int) -> int | None:
        """The value of ``key`` (0 in a table without values), or None when absent."""
        slot = self._find(key)
        if slot >= 0:
            return self._values[slot] if self._values is not None else 0
        if self._runs:
            return self._find_spilled((key >> 64) | _TAKEN, key & _LOW)
        return None

    def add(self, key: int) -> bool:
        """Add ``key``; False when it was already there."""
        return self.setdefault(key, 0) is None

    def setdefault(self, key: int, value: int) -> int | None:
        """Add ``key`` with ``value`` and return None; or, when present, its value (0 in a
        table without values), unchanged."""
        high, low = (key >> 64) | _TAKEN, key & _LOW
        highs, lows, mask = self._high, self._low, self._mask
        slot = low & mask
        while True:
            stored = highs[slot]
            if stored == 0:
                break
            if stored == high and lows[slot] == low:
                return self._values[slot] if self._values is not None else 0
            slot = (slot + 1) & mask
        if self._runs:
            spilled = self._find_spilled(high, low)
            if spilled is not None:
                return spilled
        highs[slot] = high
        lows[slot] = low
        if self._values is not None:
            if value > _SMALL_LIMIT and self._values.typecode == _SMALL_VALUES:
                self._values = array("q", self._values)
            self._values[slot] = value
        self._count += 1
        if self._count > self._limit:
            if self._budget.allows_growth(self):
                self._grow()
            else:
                self.spill()
        return None

    def spill(self) -> None:
        """Move the slots' keys to a sorted run on disk and start again with few slots; runs
        of similar size are merged, so a look-up asks a number of runs that grows with the
        logarithm of the keys."""
        if not self._count:
            return
        highs = np.frombuffer(self._high, dtype=np.uint64)
        taken = np.flatnonzero(highs)
        high, low = highs[taken], np.frombuffer(self._low, dtype=np.uint64)[taken]
        values = _numbers(self._values)
        if values is not None:
            values = values[taken]
        del highs, taken
        count, has_values = self._count, self._values is not None
        self._allocate(_FIRST_CAPACITY)  # the slots are freed before the keys are sorted
        self._spilled += count
        self._count = 0
        chunks = sorted_chunks(high, low, values)
        del high, low, values
        run = SortedRun(chunks, values=has_values, count=count, bloom_budget=self._budget.room())
        self._runs.append(run)
        while len(self._runs) > 1 and self._runs[-2].count <= 2 * self._runs[-1].count:
            room = self._budget.room()  # the merged runs' filters are counted until closed
            newer, older = self._runs.pop(), self._runs.pop()
            run = SortedRun(
                merged(older, newer),
                values=has_values,
                count=older.count + newer.count,
                bloom_budget=room,
            )
            older.close()
            newer.close()
            self._runs.append(run)

    def _find_spilled(self, high: int, low: int) -> int | None:
        for run in reversed(self._runs):
            found = run.find(high, low)
            if found is not None:
                return found
        return None

    def _find(self, key: int) -> int:
        high, low = (key >> 64) | _TAKEN, key & _LOW
        highs, lows, mask = self._high, self._low, self._mask
        slot = low & mask
        while True:
            stored = highs[slot]
            if stored == 0:
                return -1
            if stored == high and lows[slot] == low:
                return slot
            slot = (slot + 1) & mask

    def _allocate(self, capacity: int) -> None:
        self._high = array("Q", bytes(8 * capacity))
        self._low = array("Q", bytes(8 * capacity))
        if self._values is not None:
            values = array(self._values.typecode)
            self._values = array(values.typecode, bytes(values.itemsize * capacity))
        self._mask = capacity - 1
        self._limit = int(capacity * _MAX_LOAD)

    def _grow(self) -> None:
        """Twice the slots; every key placed again, a block of slots at a time, each block
        with numpy (a few passes, not a Python loop per key)."""
        old_high, old_low, old_values = self._high, self._low, self._values
        self._allocate(2 * (self._mask + 1))
        new_high = np.frombuffer(self._high, dtype=np.uint64)
        new_low = np.frombuffer(self._low, dtype=np.uint64)
        new_values = _numbers(self._values)
        mask = np.uint64(self._mask)
        for start in range(0, len(old_high), _GROW_BLOCK):
            block = slice(start, start + _GROW_BLOCK)
            highs = np.frombuffer(old_high, dtype=np.uint64)[block]
            taken = np.flatnonzero(highs)
            highs = highs[taken]
            lows = np.frombuffer(old_low, dtype=np.uint64)[block][taken]
            values = _numbers(old_values)
            if values is not None:
                values = values[block][taken]
            slots = lows & mask
            pending = np.arange(len(taken))
            while len(pending):
                wanted = slots[pending]
                free = np.flatnonzero(new_high[wanted] == 0)
                # Of the keys wanting one free slot, the first takes it; the others probe on.
                first = free[np.unique(wanted[free], return_index=True)[1]]
                placed = pending[first]
                where = slots[placed]
                new_high[where] = highs[placed]
                new_low[where] = lows[placed]
                if new_values is not None and values is not None:
                    new_values[where] = values[placed]
                pending = np.delete(pending, first)
                slots[pending] = (slots[pending] + np.uint64(1)) & mask


def _numbers(values: array[int] | None) -> np.ndarray | None:
    """A numpy view of a value array (``I`` or ``q``)."""
    if values is None:
        return None
    return np.frombuffer(values, dtype=np.uint32 if values.typecode == "I" else np.int64)


class KeyLookup(Protocol):
    """What a reference is checked against: the canonical id of a source key, or None."""

    def get(self, key: str) -> str | None: ...


_RECENT = 4096
"""Source keys whose id a ``KnownIds`` keeps at hand: references to one record come in runs
(the enrollments of a student), and minting an id costs more than the look-up."""


class KnownIds:
    """The records of a file as the canonical ids minted (by ``mint``) from their source keys:
    what a reference to that file is checked against (``KeyLookup``)."""

    __slots__ = ("_ids", "_mint", "_recent")

    def __init__(self, mint: IdMinter, budget: KeyBudget | None = None) -> None:
        self._mint = mint
        self._ids = KeyTable(budget=budget)
        self._recent: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def add(self, canonical_id: str) -> None:
        """Remember the record whose id ``mint`` made ``canonical_id``."""
        self._ids.add(id_fingerprint(canonical_id))

    def get(self, key: str) -> str | None:
        found = self._recent.get(key)
        if found is not None:
            return found
        canonical_id = self._mint(key)
        if id_fingerprint(canonical_id) not in self._ids:
            return None
        if len(self._recent) >= _RECENT:
            self._recent.clear()
        self._recent[key] = canonical_id
        return canonical_id

    @property
    def nbytes(self) -> int:
        return self._ids.nbytes
