"""Records put aside until their file has been read whole, in a temporary file.

Some rows can only be made once a whole file is known: an org whose parent comes later in
``orgs.csv``, a OneRoster user whose ``agentSourcedIds`` name users further down. Kept in
memory, what they need grows with the file (a drop of millions of orgs would hold millions
of records); here it is ``marshal``-ed to an anonymous temporary file and read back one
entry at a time.
"""

from __future__ import annotations

import marshal
import tempfile
from collections.abc import Iterator
from typing import Any

__all__ = ["Deferred"]


class Deferred:
    """Tuples of strings, numbers, booleans, dicts and lists, read back in the order put."""

    def __init__(self) -> None:
        # Open for the load's length, closed by ``close``.
        self._file = tempfile.TemporaryFile(prefix="industrydata-deferred-")  # noqa: SIM115
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, entry: tuple[Any, ...]) -> None:
        marshal.dump(entry, self._file)
        self._count += 1

    def drain(self) -> Iterator[tuple[Any, ...]]:
        """The entries put so far, each once; the file is empty afterwards."""
        self._file.flush()
        self._file.seek(0)
        for _ in range(self._count):
            yield marshal.load(self._file)
        self._file.seek(0)
        self._file.truncate()
        self._count = 0

    def close(self) -> None:
        self._file.close()
