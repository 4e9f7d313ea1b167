"""The keys a load remembers, in a few bytes each: duplicate detection, references, ids written.

A load must remember every key it has seen: which records a file already held (a duplicate is
rejected, naming the line of the first), which users, classes ... exist (a reference to one
that does not is a problem), which identifiers the writer wrote (the others lose their
presence flag). Python dicts and sets of the keys cost 180 to 260 bytes per key, so a large
district (or a drop of millions of valid records) took a process past 512 MiB. Here a key is
a 128-bit fingerprint in flat arrays:

- ``KeyTable``: an open-addressing hash table of fingerprints (16 bytes a slot, 24 with a
  value such as a line number), at most three quarters full.
- ``KnownIds``: the canonical ids minted for a file's source keys, for references.
- ``WrittenIds``: the canonical ids a writer wrote, 16 bytes each, sorted once at the end.

Exactness. ``WrittenIds`` holds the ids themselves (exact). A ``KeyTable`` compares 127 bits
of a fingerprint: of a source key, BLAKE2b (``fingerprint``); of a canonical id, the id's own
bits (``id_fingerprint``, 121 bits, as random as the UUID v5 it is). Two different keys are
taken for one only when their fingerprints collide: for n keys the chance is below
n² / 2^122, under 10^-20 for a hundred million keys. A canonical id collision would already
merge two records in the store, whose primary keys are these ids.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable
from typing import Protocol

import numpy as np

from ..ids import IdMinter, composite_key

__all__ = [
    "KeyLookup",
    "KeyTable",
    "KnownIds",
    "WrittenIds",
    "fingerprint",
    "id_fingerprint",
]

_LOW = (1 << 64) - 1
_TAKEN = 1 << 63
"""Set in every stored high word: a zero high word marks a free slot."""
_MAX_LOAD = 0.75
_FIRST_CAPACITY = 1 << 10


def fingerprint(*parts: str) -> int:
    """128 bits of BLAKE2b of a key made of ``parts`` (unambiguous: ``composite_key``)."""
    digest = hashlib.blake2b(composite_key(*parts).encode(), digest_size=16).digest()
    return int.from_bytes(digest)


def id_fingerprint(canonical_id: str) -> int:
    """The 128 bits of a canonical id (UUID text)."""
    return int(canonical_id.replace("-", ""), 16)


class KeyTable:
    """A set of 128-bit fingerprints, each with an optional integer value, in flat arrays:
    16 bytes a slot (24 with values), between 3/8 and 3/4 of the slots taken."""

    __slots__ = ("_high", "_low", "_values", "_mask", "_count", "_limit")

    def __init__(self, *, values: bool = False) -> None:
        self._values: array[int] | None = array("q") if values else None
        self._allocate(_FIRST_CAPACITY)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: int) -> bool:
        return self._find(key) >= 0

    @property
    def nbytes(self) -> int:
        """Bytes the table holds (its arrays)."""
        size = self._high.itemsize + self._low.itemsize
        if self._values is not None:
            size += self._values.itemsize
        return size * len(self._high)

    def get(self, key: int) -> int | None:
        """The value of ``key`` (0 in a table without values), or None when absent."""
        slot = self._find(key)
        if slot < 0:
            return None
        return self._values[slot] if self._values is not None else 0

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
        highs[slot] = high
        lows[slot] = low
        if self._values is not None:
            self._values[slot] = value
        self._count += 1
        if self._count > self._limit:
            self._grow()
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
            self._values = array("q", bytes(8 * capacity))
        self._mask = capacity - 1
        self._limit = int(capacity * _MAX_LOAD)

    def _grow(self) -> None:
        """Twice the slots; every key placed again (with numpy: a few passes, not a Python
        loop per key)."""
        highs = np.frombuffer(self._high, dtype=np.uint64)
        lows = np.frombuffer(self._low, dtype=np.uint64)
        taken = np.flatnonzero(highs)
        old_high, old_low = highs[taken], lows[taken]
        old_values = None
        if self._values is not None:
            old_values = np.frombuffer(self._values, dtype=np.int64)[taken]
        del highs, lows  # release the exports of the old arrays before they are replaced
        self._allocate(2 * (self._mask + 1))
        new_high = np.frombuffer(self._high, dtype=np.uint64)
        new_low = np.frombuffer(self._low, dtype=np.uint64)
        new_values = None
        if self._values is not None:
            new_values = np.frombuffer(self._values, dtype=np.int64)
        mask = np.uint64(self._mask)
        slots = old_low & mask
        pending = np.arange(len(taken))
        while len(pending):
            wanted = slots[pending]
            free = new_high[wanted] == 0
            # Of the keys wanting one free slot, the first takes it; the others probe on.
            first = np.unique(wanted[free], return_index=True)[1]
            placed = pending[free][first]
            where = slots[placed]
            new_high[where] = old_high[placed]
            new_low[where] = old_low[placed]
            if new_values is not None and old_values is not None:
                new_values[where] = old_values[placed]
            keep = np.ones(len(pending), dtype=bool)
            keep[np.flatnonzero(free)[first]] = False
            pending = pending[keep]
            slots[pending] = (slots[pending] + np.uint64(1)) & mask


class KeyLookup(Protocol):
    """What a reference is checked against: the canonical id of a source key, or None."""

    def get(self, key: str) -> str | None: ...


class KnownIds:
    """The source keys of a file's records as the canonical ids minted for them: what a
    reference to that file is checked against (``KeyLookup``)."""

    __slots__ = ("_mint", "_ids")

    def __init__(self, mint: IdMinter) -> None:
        self._mint = mint
        self._ids = KeyTable()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: str) -> bool:
        return id_fingerprint(self._mint(key)) in self._ids

    def add(self, key: str) -> str:
        """Remember ``key``; its canonical id."""
        canonical_id = self._mint(key)
        self._ids.add(id_fingerprint(canonical_id))
        return canonical_id

    def get(self, key: str) -> str | None:
        canonical_id = self._mint(key)
        return canonical_id if id_fingerprint(canonical_id) in self._ids else None

    @property
    def nbytes(self) -> int:
        return self._ids.nbytes


_HEX_DIGITS = np.full(256, 255, dtype=np.uint8)
for _value, _digit in enumerate(b"0123456789abcdef"):
    _HEX_DIGITS[_digit] = _value
_UUID_HEX_COLUMNS = np.array([n for n in range(36) if n not in (8, 13, 18, 23)])
_UUID_DASH_COLUMNS = np.array([8, 13, 18, 23])


def _uuid_bytes(ids: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Lower-case UUID texts as 16-byte values (``S16``), and which of ``ids`` were UUID
    texts at all (the others' values are meaningless)."""
    texts = [text.encode("utf-8", "replace") for text in ids]
    raw = np.array(texts, dtype="S36") if texts else np.zeros(0, dtype="S36")
    chars = raw.view(np.uint8).reshape(-1, 36)
    digits = _HEX_DIGITS[chars[:, _UUID_HEX_COLUMNS]]
    valid = (
        (np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) == 36)
        & (chars[:, _UUID_DASH_COLUMNS] == ord("-")).all(axis=1)
        & (digits != 255).all(axis=1)
    )
    packed = (digits[:, 0::2] << 4) | digits[:, 1::2]
    return np.ascontiguousarray(packed).view("S16").reshape(-1), valid


class WrittenIds:
    """The canonical ids (UUID texts) a writer wrote, 16 bytes each: which of the stored ids
    it did not write."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._sorted: np.ndarray | None = None

    def update(self, ids: Iterable[str]) -> None:
        values, valid = _uuid_bytes(ids)
        if not valid.all():
            raise ValueError("a load writes canonical ids (UUID text) only")
        self._chunks.append(values)
        self._sorted = None

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def absent(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` that were not written."""
        if self._sorted is None:
            whole = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype="S16")
            self._chunks = []
            self._sorted = np.unique(whole)
            del whole
            self._chunks = [self._sorted]
        values, valid = _uuid_bytes(ids)
        written = self._sorted
        where = np.searchsorted(written, values)
        found = np.zeros(len(ids), dtype=bool)
        inside = where < len(written)
        found[inside] = written[where[inside]] == values[inside]
        found &= valid
        return [ids[n] for n in np.flatnonzero(~found)]
