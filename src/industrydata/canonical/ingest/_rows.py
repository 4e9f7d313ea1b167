"""Canonical rows as a loader makes them: tuples in SQL column order, handed on in chunks.

Reading an upload needs no database: a loader adds rows as dicts of CDM column names, and
``TableRows`` turns each into a tuple (``TenantId`` first, then the table's columns in
order) with the defaults of a load filled in, then passes full chunks, sorted on the key, to
a sink. The sink writes them, in this process or, through a queue, in another.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from ..sql import TENANT_COLUMN
from ..tables import CanonicalTable, ColumnType

__all__ = [
    "FIRST_SEEN",
    "LAST_SEEN",
    "PRESENCE_COLUMNS",
    "RowSink",
    "TableRows",
    "row_columns",
]

PRESENCE_COLUMNS = ("IsActiveInSession", "IsPresentInSource")
FIRST_SEEN = "FirstSeenDateTime"
LAST_SEEN = "LastSeenDateTime"
SOURCE_SYSTEM = "SourceSystemId"

RowSink = Callable[[str, list[tuple[Any, ...]]], None]
"""Receives a canonical table's name and a chunk of its rows."""


def row_columns(table: CanonicalTable) -> list[str]:
    """The columns of a row tuple: the SQL table's, ``TenantId`` first."""
    return [TENANT_COLUMN, *table.column_names]


class TableRows:
    """Collects the rows of one canonical table and hands them to ``sink`` in chunks.

    Columns a row leaves out take the defaults of a load: the empty string for String columns
    (as the SDS export writes absent values), ``seen`` (the load's time as the driver takes
    it) for FirstSeen/LastSeen, true for the presence flag, the load's SourceSystemId.
    """

    def __init__(
        self,
        table: CanonicalTable,
        *,
        tenant_id: str,
        source_system_id: str,
        seen: str,
        sink: RowSink,
        chunk_size: int = 10_000,
    ) -> None:
        self.table = table
        self._sink = sink
        self._chunk_size = chunk_size
        self._buffer: list[tuple[Any, ...]] = []
        self._defaults = {TENANT_COLUMN: tenant_id} | {
            column.name: _default(column.name, column.type, seen, source_system_id)
            for column in table.columns
        }
        columns = row_columns(table)
        self._to_tuple = itemgetter(*columns)
        self._sort_key = itemgetter(*(columns.index(name) for name in table.key))

    def add(self, row: dict[str, Any]) -> None:
        """Queue one row; a full chunk is handed on at once."""
        self._buffer.append(self._to_tuple(self._defaults | row))
        if len(self._buffer) >= self._chunk_size:
            self.flush()

    def flush(self) -> None:
        """Hand on the queued rows, sorted on the key so index pages are visited in order."""
        if self._buffer:
            self._buffer.sort(key=self._sort_key)
            self._sink(self.table.name, self._buffer)
            self._buffer = []


def _default(name: str, column_type: ColumnType, seen: Any, source_system_id: str) -> Any:
    if name in (FIRST_SEEN, LAST_SEEN):
        return seen
    if name in PRESENCE_COLUMNS:
        return True
    if name == SOURCE_SYSTEM:
        return source_system_id
    if column_type is ColumnType.STRING:
        return ""
    return None
