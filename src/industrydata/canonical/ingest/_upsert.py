"""Longitudinal upsert of canonical rows: chunked, set-based, inside the load's transaction.

A row is keyed on ``TenantId`` plus the table's natural key. New rows get
FirstSeen = LastSeen = the load's time; existing rows keep FirstSeen and take the new values
and LastSeen. Before a full load writes a table, every row of the tenant is marked absent
(``IsActiveInSession`` / ``IsPresentInSource`` false); the rows the load writes are marked
present again, so rows missing from the load stay, inactive, with their old LastSeen.

The upsert is SQLAlchemy Core ``insert ... on_conflict_do_update`` of the dialect, compiled
once per table and run with the driver's executemany: the values of a load are plain strings,
numbers and booleans, and the one timestamp is converted once, so per-row parameter
processing would only cost time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from ..sql import TENANT_COLUMN, sql_table
from ..tables import CanonicalTable, ColumnType

__all__ = ["PRESENCE_COLUMNS", "TableUpsert"]

PRESENCE_COLUMNS = ("IsActiveInSession", "IsPresentInSource")
FIRST_SEEN = "FirstSeenDateTime"
LAST_SEEN = "LastSeenDateTime"
SOURCE_SYSTEM = "SourceSystemId"

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class TableUpsert:
    """Buffers the rows of one canonical table and upserts them in chunks.

    Rows are dicts of CDM column names; columns a row leaves out take the defaults of a load:
    the empty string for String columns (as the SDS export writes absent values), the load's
    time for FirstSeen/LastSeen, true for the presence flag, the load's SourceSystemId.
    """

    def __init__(
        self,
        connection: Connection,
        table: CanonicalTable,
        *,
        tenant_id: str,
        source_system_id: str,
        now: datetime,
        chunk_size: int = 5000,
    ) -> None:
        self.table = table
        self.written = 0
        self._connection = connection
        self._sql = sql_table(table)
        self._tenant_id = tenant_id
        self._chunk_size = chunk_size
        self._buffer: list[dict[str, Any]] = []
        to_driver = DateTime().dialect_impl(connection.dialect).bind_processor(connection.dialect)
        seen = to_driver(now) if to_driver else now
        self._defaults = {TENANT_COLUMN: tenant_id} | {
            column.name: _default(column.name, column.type, seen, source_system_id)
            for column in table.columns
        }
        self._presence = next((name for name in PRESENCE_COLUMNS if table.has_column(name)), None)
        self._statement = _upsert_sql(connection.dialect, table)

    def mark_all_absent(self) -> None:
        """Clear the presence flag of the tenant's rows; the rows written set it again."""
        if self._presence is None:
            return
        column = self._sql.c[self._presence]
        self._connection.execute(
            update(self._sql)
            .where(self._sql.c[TENANT_COLUMN] == self._tenant_id, column.is_not(False))
            .values({self._presence: False})
        )

    def add(self, row: dict[str, Any]) -> None:
        """Queue one row; a full buffer is written at once."""
        self._buffer.append(self._defaults | row)
        if len(self._buffer) >= self._chunk_size:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows."""
        if not self._buffer:
            return
        self._connection.exec_driver_sql(self._statement, self._buffer)
        self.written += len(self._buffer)
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


def _upsert_sql(dialect: Dialect, table: CanonicalTable) -> str:
    """The upsert as SQL with named parameters that the driver fills from row dicts."""
    try:
        insert = _INSERTS[dialect.name]
    except KeyError:
        raise ValueError(f"the canonical store does not support {dialect.name}") from None
    statement = insert(sql_table(table))
    keys = (TENANT_COLUMN, *table.key)
    refreshed = [name for name in table.column_names if name not in keys and name != FIRST_SEEN]
    if refreshed:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: statement.excluded[name] for name in refreshed},
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    named = sqlite.dialect(paramstyle="named") if dialect.name == "sqlite" else dialect
    columns = [TENANT_COLUMN, *table.column_names]
    return str(statement.compile(dialect=named, column_keys=columns))
