"""Longitudinal upsert of canonical rows: chunked, set-based, inside the load's transaction.

A row is keyed on ``TenantId`` plus the table's natural key. New rows get
FirstSeen = LastSeen = the load's time; existing rows keep FirstSeen and take the new values
and LastSeen. Every row the load writes gets the load's change version (``RowVersion``, see
``canonical.changes``); a new row also gets a fresh ``RowNumber``, which an update never
changes. Rows missing from a full load stay, with their old LastSeen, and lose their
presence flag (``IsActiveInSession`` / ``IsPresentInSource``), which is a change too:

- in a table with LastSeen, one statement after the load clears the flag of the rows whose
  LastSeen is not the load's time (the rows the load did not write);
- PersonIdentifier has a presence flag but no LastSeen: the load puts the ids it writes in a
  temporary table of its connection (only when the tenant had identifiers before), on the
  database's disk rather than in the process (a district has millions of them), then clears
  the flag of the tenant's other rows in one statement.

The upsert is SQLAlchemy Core ``insert ... on_conflict_do_update`` of the dialect; in a table
without LastSeen it rewrites a row only when a value changed (its version is not a value), so
a reload of unchanged data only reads those rows and leaves their version alone. It is
compiled once per table with positional parameters and run with the driver's
``executemany`` on the tuples of ``TableRows``, each extended by a row number and the
version: the values of a load are plain strings, numbers and booleans, the one timestamp
included (``driver_time``), so per-row parameter processing would only cost time.

On SQLite one statement writes as many rows as 999 parameters hold. The store's triggers
(``canonical.changes``) make SQLite copy every page a statement changes into a statement
journal first, once per statement: with a statement per row that copying took a fifth of
the load's time (0.9 million rows: 20.4 s, in groups 16.0 s). PostgreSQL keeps one row per
statement: it refuses a statement that updates a row twice, which a chunk repeating a key
would ask for.
"""

from __future__ import annotations

from datetime import datetime
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, bindparam, column, exists, or_, select, update
from sqlalchemy import table as sql_table_clause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from ..changes import ChangeStamp
from ..sql import ROW_NUMBER_COLUMN, ROW_VERSION_COLUMN, TENANT_COLUMN, sql_table
from ..tables import CanonicalTable
from ._rows import FIRST_SEEN, LAST_SEEN, PRESENCE_COLUMNS, row_columns

__all__ = ["TableUpsert", "driver_time"]

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_POSITIONAL = {"sqlite": "qmark", "postgresql": "format"}
_SQLITE_PARAMETERS = 999
"""Parameters per statement that every SQLite takes (the limit before 3.32)."""
_TEMP_CACHE_KIB = 32 * 1024
"""Page cache of SQLite's temporary tables on the loading connection (the ids written; the
rest of the table waits in SQLite's temporary file)."""


def driver_time(moment: datetime) -> str:
    """``moment`` as text that both drivers take for a DateTime column: SQLAlchemy's storage
    format on SQLite, a timestamp literal (the statement casts it) on PostgreSQL. Text keeps
    every value of a row a plain string, number or boolean."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


class TableUpsert:
    """Writes the row chunks of one canonical table and keeps its presence flags right."""

    def __init__(
        self,
        connection: Connection,
        table: CanonicalTable,
        *,
        tenant_id: str,
        now: datetime,
        stamp: ChangeStamp,
    ) -> None:
        self.table = table
        self.written = 0
        self._connection = connection
        self._sql = sql_table(table)
        self._tenant_id = tenant_id
        self._now = now
        self._stamp = stamp
        self._statement = _upsert_sql(connection.dialect, table)
        self._group = 1
        self._grouped_statement: str | None = None
        if connection.dialect.name == "sqlite":
            self._group = _SQLITE_PARAMETERS // (len(row_columns(table)) + 2)
            self._grouped_statement = _upsert_sql(connection.dialect, table, self._group)
        self._presence = next((name for name in PRESENCE_COLUMNS if table.has_column(name)), None)
        self._row_id = itemgetter(row_columns(table).index(table.key[0]))
        self._written_ids: _WrittenIds | None = None

    def before_load(self) -> None:
        """Start remembering the ids written when the presence of rows cannot be told from
        LastSeen and the tenant already has rows (a first load has nothing to mark)."""
        if self._presence is None or self.table.has_column(LAST_SEEN):
            return
        tenant = self._sql.c[TENANT_COLUMN]
        first = select(tenant).where(tenant == self._tenant_id).limit(1)
        if self._connection.execute(first).first() is not None:
            self._written_ids = _WrittenIds(self._connection, self.table)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        """Upsert one chunk of row tuples (``TableRows`` order)."""
        stamps = zip(self._stamp.row_numbers(len(rows)), repeat(self._stamp.version))
        stamped = list(map(tuple.__add__, rows, stamps))
        grouped = 0
        if self._grouped_statement is not None:
            group = self._group
            grouped = len(stamped) - len(stamped) % group
            groups = [
                tuple(chain.from_iterable(stamped[start : start + group]))
                for start in range(0, grouped, group)
            ]
            if groups:
                self._connection.exec_driver_sql(self._grouped_statement, groups)
        if grouped < len(stamped):
            self._connection.exec_driver_sql(self._statement, stamped[grouped:])
        self.written += len(rows)
        if self._written_ids is not None:
            self._written_ids.add(list(map(self._row_id, rows)))

    def after_load(self) -> None:
        """Clear the presence flag of the tenant's rows that the load did not write."""
        if self._presence is None:
            return
        present = self._sql.c[self._presence]
        tenant = self._sql.c[TENANT_COLUMN]
        if self.table.has_column(LAST_SEEN):
            self._connection.execute(
                update(self._sql)
                .where(tenant == self._tenant_id, present.is_not(False))
                .where(self._sql.c[LAST_SEEN] != self._now)
                .values({present.name: False, ROW_VERSION_COLUMN: self._stamp.version})
            )
        elif self._written_ids is not None:
            self._connection.execute(
                update(self._sql)
                .where(self._sql.c[TENANT_COLUMN] == self._tenant_id, present.is_not(False))
                .where(~self._written_ids.holds(self._sql.c[self.table.key[0]]))
                .values({present.name: False, ROW_VERSION_COLUMN: self._stamp.version})
            )
            self._written_ids.drop()
            self._written_ids = None


class _WrittenIds:
    """The ids a load wrote to one table, in a temporary table of the load's connection:
    dropped by ``drop`` (on PostgreSQL at the latest when the load's transaction ends; on
    SQLite, whose sliced load commits many times, by the next load on the connection)."""

    def __init__(self, connection: Connection, table: CanonicalTable) -> None:
        self._connection = connection
        self._postgresql = connection.dialect.name == "postgresql"
        self._name = f"written_{table.name.lower()}"
        self._table = sql_table_clause(self._name, column("id"))
        self.drop()  # one left by a load that failed
        on_commit = " ON COMMIT DROP" if self._postgresql else ""
        if not self._postgresql:
            connection.exec_driver_sql(f"PRAGMA temp.cache_size = -{_TEMP_CACHE_KIB}")
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {self._name} (id VARCHAR(36) PRIMARY KEY){on_commit}"
        )

    def add(self, ids: list[str]) -> None:
        if self._postgresql:
            raw = self._connection.connection.driver_connection
            with raw.cursor() as cursor, cursor.copy(f"COPY {self._name} (id) FROM STDIN") as copy:
                for id_ in ids:
                    copy.write_row((id_,))
        else:
            self._connection.exec_driver_sql(
                f"INSERT OR IGNORE INTO {self._name} (id) VALUES (?)", [(id_,) for id_ in ids]
            )

    def holds(self, id_column: Any) -> Any:
        """``EXISTS`` of ``id_column`` in the table (an anti-join when negated: PostgreSQL
        would hash ``NOT IN`` only within ``work_mem``)."""
        return exists().where(self._table.c.id == id_column)

    def drop(self) -> None:
        self._connection.exec_driver_sql(f"DROP TABLE IF EXISTS {self._name}")


def _upsert_sql(dialect: Dialect, table: CanonicalTable, rows: int = 1) -> str:
    """The upsert of ``rows`` rows as SQL with positional parameters, each row's in
    ``row_columns`` order, then ``RowNumber`` and ``RowVersion``."""
    try:
        insert = _INSERTS[dialect.name]
    except KeyError:
        raise ValueError(f"the canonical store does not support {dialect.name}") from None
    columns = [*row_columns(table), ROW_NUMBER_COLUMN, ROW_VERSION_COLUMN]
    statement = insert(sql_table(table))
    if rows > 1:
        statement = statement.values(
            [{name: bindparam(f"{name}_{n}") for name in columns} for n in range(rows)]
        )
    keys = (TENANT_COLUMN, *table.key)
    refreshed = [name for name in table.column_names if name not in keys and name != FIRST_SEEN]
    if refreshed:
        target = sql_table(table)
        changed = None
        if LAST_SEEN not in refreshed:
            changed = or_(
                *(target.c[name].is_distinct_from(statement.excluded[name]) for name in refreshed)
            )
        statement = statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: statement.excluded[name] for name in (*refreshed, ROW_VERSION_COLUMN)},
            where=changed,
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    positional = type(dialect)(paramstyle=_POSITIONAL[dialect.name])
    if rows > 1:
        compiled = statement.compile(dialect=positional)
        expected = [f"{name}_{n}" for n in range(rows) for name in columns]
    else:
        compiled = statement.compile(dialect=positional, column_keys=columns)
        expected = columns
    if list(compiled.positiontup or ()) != expected:
        raise ValueError(f"unexpected parameter order in the upsert of {table.name}")
    return str(compiled)
