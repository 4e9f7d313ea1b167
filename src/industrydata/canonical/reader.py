"""Read canonical tables from the store as Arrow record batches, through ADBC.

Batches stream from the database (memory stays flat whatever the table size), arrive in
``arrow_schema(table)`` and in natural-key order, so two reads of unchanged data give the
same rows in the same order. ``open_store_reader`` reads many tables inside one read
transaction, which is what makes an exported snapshot consistent across tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from sqlalchemy import Integer, Text, literal, select, union_all
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.sql import Select
from sqlalchemy.sql.selectable import CompoundSelect

from .arrow import conform_batch
from .sql import TENANT_COLUMN, sql_table
from .tables import CanonicalTable, ColumnType

__all__ = ["StoreReader", "open_store_reader", "read_table"]

DEFAULT_BATCH_ROWS = 65536

# The ADBC SQLite driver fixes each column's Arrow type from the first batch it reads; a
# column that is NULL throughout that batch becomes int64 and later text fails with a type
# mismatch. A leading typed sentinel row (text for text and date-time columns, an integer
# for booleans and integers) pins every type; it is dropped before anyone sees it. Its
# TenantId is '', which sorts before every real tenant id, so ``ORDER BY TenantId, key``
# puts it first while SQLite still walks the primary-key index instead of sorting.
_SENTINEL_TENANT = literal("", Text)
_SENTINEL_VALUES: dict[ColumnType, Any] = {
    ColumnType.STRING: literal("", Text),
    ColumnType.DATETIME: literal("", Text),
    ColumnType.BOOLEAN: literal(0, Integer),
    ColumnType.INT32: literal(0, Integer),
}


class StoreReader:
    """Reads canonical tables of one store connection, all inside one read transaction."""

    def __init__(self, connection: Any, url: URL) -> None:
        self._connection = connection
        self._dialect: Dialect = url.get_dialect()()
        self._sqlite = url.get_backend_name() == "sqlite"

    def read_table(
        self, table: CanonicalTable, tenant_id: str, *, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """The tenant's rows of ``table``, ordered by natural key, in batches of at most
        ``batch_rows`` rows (empty batches are never yielded)."""
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        if not tenant_id:
            raise ValueError("tenant_id must not be empty")
        query = _sentinel_query(table, tenant_id) if self._sqlite else _query(table, tenant_id)
        sql = str(query.compile(dialect=self._dialect, compile_kwargs={"literal_binds": True}))
        cursor = self._connection.cursor()
        try:
            if self._sqlite:
                cursor.adbc_statement.set_options(
                    **{"adbc.sqlite.query.batch_rows": str(batch_rows)}
                )
            cursor.execute(sql)
            first = self._sqlite
            for batch in cursor.fetch_record_batch():
                if first:
                    batch, first = batch.slice(1), False
                for offset in range(0, batch.num_rows, batch_rows):
                    yield conform_batch(batch.slice(offset, batch_rows), table)
        finally:
            cursor.close()


@contextmanager
def open_store_reader(store_url: str) -> Iterator[StoreReader]:
    """A reader on ``store_url`` (a SQLAlchemy URL of the store) whose reads all see the
    same committed state, so a snapshot never mixes tables from before and after a load."""
    url = make_url(store_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        from adbc_driver_sqlite import dbapi as sqlite_dbapi

        if not url.database or url.database == ":memory:":
            raise ValueError("an in-memory SQLite store cannot be opened a second time")
        # Without autocommit the driver holds one transaction; in WAL mode its first read
        # fixes the snapshot every later read sees.
        connection = sqlite_dbapi.connect(url.database)
    elif backend == "postgresql":
        from adbc_driver_postgresql import dbapi as postgresql_dbapi

        libpq_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = postgresql_dbapi.connect(libpq_url)
    else:
        raise ValueError(f"unsupported store backend: {backend}")
    try:
        if backend == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield StoreReader(connection, url)
    finally:
        # Closing ends the read-only transaction; nothing was written, nothing to commit.
        connection.close()


def read_table(
    store_url: str,
    table: CanonicalTable,
    tenant_id: str,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """The tenant's rows of one canonical table as Arrow batches (see ``StoreReader``)."""
    with open_store_reader(store_url) as reader:
        yield from reader.read_table(table, tenant_id, batch_rows=batch_rows)


def _query(table: CanonicalTable, tenant_id: str) -> Select:
    sql = sql_table(table)
    return (
        select(*(sql.c[name] for name in table.column_names))
        .where(sql.c[TENANT_COLUMN] == tenant_id)
        .order_by(*(sql.c[name] for name in table.key))
    )


def _sentinel_query(table: CanonicalTable, tenant_id: str) -> CompoundSelect:
    sql = sql_table(table)
    sentinel = select(
        _SENTINEL_TENANT.label(TENANT_COLUMN),
        *(_SENTINEL_VALUES[column.type].label(column.name) for column in table.columns),
    )
    rows = select(sql.c[TENANT_COLUMN], *(sql.c[name] for name in table.column_names)).where(
        sql.c[TENANT_COLUMN] == tenant_id
    )
    query = union_all(sentinel, rows)
    return query.order_by(*(query.selected_columns[name] for name in (TENANT_COLUMN, *table.key)))
