"""Fingerprints a ``KeyTable`` has spilled to disk: sorted runs in anonymous temporary files.

A run is written once, sorted, in blocks. A key is stored as 16 big-endian bytes (high
word, low word), so byte order is key order and a block is searched without decoding it.
Memory keeps only what finds a block (the first key of each, at most ``_MAX_FENCES`` per
run: the blocks grow with the run instead) and, budget permitting, a blocked Bloom filter
that answers most look-ups of absent keys without reading the disk. A look-up that passes
the filter reads one block with ``pread`` (the page cache holds it, not the process), so
memory does not follow the number of keys. Two runs merge into one a chunk at a time.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from typing import IO

import numpy as np

__all__ = ["SortedRun", "merged", "sorted_chunks"]

_KEY = 16
_MIN_BLOCK = 512
"""Keys of a block at least (12 KiB with values): one ``pread`` and a binary search."""
_MAX_FENCES = 1 << 14
"""Blocks of a run at most: its fences take 1 MiB whatever its size."""
_FENCE_BYTES = 64
"""Memory of one fence: a 16-byte ``bytes`` object and its list entry."""
_BLOOM_BITS_PER_KEY = 10
"""About 1% of absent keys pass a blocked filter at ten bits a key (six bits set a key)."""
_MERGE_CHUNK = 1 << 18
"""Keys read from each run at a time while merging."""
_PROBES = 6


def _dtype(values: bool) -> np.dtype:
    fields = [("high", ">u8"), ("low", ">u8")]
    if values:
        fields.append(("value", "<i8"))
    return np.dtype(fields)


def _bloom_bytes(keys: int) -> int:
    """Bytes a filter for ``keys`` keys wants: a power of two of 8-byte words."""
    words = max(1, (keys * _BLOOM_BITS_PER_KEY + 63) // 64)
    return 8 * (1 << (words - 1).bit_length())


def _bloom_masks(highs: np.ndarray) -> np.ndarray:
    """The bits a key sets in its word: six positions from the high word's bits 16 to 51
    (the bits below hold a UUID's version nibble, the same in every canonical id)."""
    highs = highs.astype(np.uint64)
    masks = np.zeros(len(highs), dtype=np.uint64)
    for probe in range(_PROBES):
        shift = np.uint64(16 + 6 * probe)
        masks |= np.left_shift(np.uint64(1), (highs >> shift) & np.uint64(63))
    return masks


def _bloom_mask(high: int) -> int:
    mask = 0
    for probe in range(_PROBES):
        mask |= 1 << ((high >> (16 + 6 * probe)) & 63)
    return mask


class SortedRun:
    """Distinct keys (stored high word, low word) and optional values, sorted, on disk."""

    __slots__ = ("_block", "_bloom", "_bloom_word_mask", "_dtype", "_fences", "_file", "count")

    def __init__(
        self, chunks: Iterator[np.ndarray], *, values: bool, count: int, bloom_budget: int
    ) -> None:
        """Write ``count`` keys given in sorted ``chunks`` (structured arrays of ``_dtype``);
        a filter is built when ``bloom_budget`` bytes allow one of ``_bloom_bytes(count)``."""
        self.count = count
        self._dtype = _dtype(values)
        self._block = max(_MIN_BLOCK, -(-count // _MAX_FENCES))
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="industrydata-keys-")  # noqa: SIM115
        size = _bloom_bytes(count)
        self._bloom = array("Q", bytes(size)) if size <= bloom_budget else None
        self._bloom_word_mask = size // 8 - 1
        self._fences: list[bytes] = []
        pending = np.empty(0, dtype=self._dtype)
        for chunk in chunks:
            pending = np.concatenate([pending, chunk]) if len(pending) else chunk
            whole = len(pending) - len(pending) % self._block
            self._write(pending[:whole])
            pending = pending[whole:]
        self._write(pending)
        self._file.flush()

    @property
    def nbytes(self) -> int:
        """Memory the run keeps: its fences and filter."""
        bloom = 8 * len(self._bloom) if self._bloom is not None else 0
        return bloom + _FENCE_BYTES * len(self._fences)

    def _write(self, keys: np.ndarray) -> None:
        if not len(keys):
            return
        # numpy's concatenation may hand the fields back in native byte order.
        data = keys.astype(self._dtype, copy=False).tobytes()
        step = self._block * self._dtype.itemsize
        self._fences.extend(data[start : start + _KEY] for start in range(0, len(data), step))
        if self._bloom is not None:
            word_mask = np.uint64(self._bloom_word_mask)
            words = (keys["low"].astype(np.uint64) & word_mask).astype(np.int64)
            bloom = np.frombuffer(self._bloom, dtype=np.uint64)
            np.bitwise_or.at(bloom, words, _bloom_masks(keys["high"]))
        self._file.write(data)

    def find(self, high: int, low: int) -> int | None:
        """The value of (stored ``high``, ``low``), 0 without values, or None when absent."""
        if self._bloom is not None:
            mask = _bloom_mask(high)
            if self._bloom[low & self._bloom_word_mask] & mask != mask:
                return None
        key = ((high << 64) | low).to_bytes(_KEY, "big")
        block = bisect_right(self._fences, key) - 1
        if block < 0:
            return None
        size = self._dtype.itemsize
        data = os.pread(self._file.fileno(), self._block * size, block * self._block * size)
        first, last = 0, len(data) // size
        while first < last:
            middle = (first + last) // 2
            if data[middle * size : middle * size + _KEY] < key:
                first = middle + 1
            else:
                last = middle
        at = first * size
        if data[at : at + _KEY] != key:
            return None
        if size == _KEY:
            return 0
        return int.from_bytes(data[at + _KEY : at + size], "little", signed=True)

    def chunks(self) -> Iterator[np.ndarray]:
        """The run's keys in order, ``_MERGE_CHUNK`` at a time."""
        size = self._dtype.itemsize
        for first in range(0, self.count, _MERGE_CHUNK):
            count = min(_MERGE_CHUNK, self.count - first)
            data = os.pread(self._file.fileno(), count * size, first * size)
            yield np.frombuffer(data, dtype=self._dtype)

    def close(self) -> None:
        self._file.close()


def merged(older: SortedRun, newer: SortedRun) -> Iterator[np.ndarray]:
    """The keys of two runs (disjoint) in order, a bounded chunk at a time: each step takes
    from both sides every key up to the smaller of their chunks' last keys."""
    sides = [older.chunks(), newer.chunks()]
    buffers = [next(side, None) for side in sides]
    while buffers[0] is not None and buffers[1] is not None:
        bound = min((int(buffer["high"][-1]), int(buffer["low"][-1])) for buffer in buffers)
        taken = []
        for index, buffer in enumerate(buffers):
            upto = _count_upto(buffer, bound)
            taken.append(buffer[:upto])
            rest = buffer[upto:]
            buffers[index] = rest if len(rest) else next(sides[index], None)
        both = np.concatenate(taken)
        yield both[np.lexsort((both["low"], both["high"]))]
    for index, buffer in enumerate(buffers):
        while buffer is not None:
            yield buffer
            buffer = next(sides[index], None)


def _count_upto(keys: np.ndarray, bound: tuple[int, int]) -> int:
    """How many of sorted ``keys`` are at most (high, low) ``bound``."""
    high, low = bound
    start = int(np.searchsorted(keys["high"], high, side="left"))
    end = int(np.searchsorted(keys["high"], high, side="right"))
    return start + int(np.searchsorted(keys["low"][start:end], low, side="right"))


def sorted_chunks(
    high: np.ndarray, low: np.ndarray, values: np.ndarray | None
) -> Iterator[np.ndarray]:
    """Keys (stored high and low words, and values) in order, ``_MERGE_CHUNK`` at a time:
    only the sort order is made whole, not a sorted copy of the keys."""
    order = np.lexsort((low, high))
    dtype = _dtype(values is not None)
    for start in range(0, len(order), _MERGE_CHUNK):
        part = order[start : start + _MERGE_CHUNK]
        chunk = np.empty(len(part), dtype=dtype)
        chunk["high"], chunk["low"] = high[part], low[part]
        if values is not None:
            chunk["value"] = values[part]
        yield chunk
