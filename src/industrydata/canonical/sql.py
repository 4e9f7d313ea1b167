"""SQL tables of the canonical store, derived from ``CANONICAL_TABLES``, and the two tables
of its change tracking.

Each table gets a leading ``TenantId`` column; its primary key is ``TenantId`` plus the
table's natural key. Column names are the CDM attribute names, followed by two columns of
change tracking (``canonical.changes`` explains them): ``RowNumber``, the row's number,
unique per tenant and table and kept for the row's life, and ``RowVersion``, the change
version of the row's last insert or update, indexed with ``TenantId`` so an export reads
only what changed. ``canonical_changes`` holds each tenant's counters and
``canonical_tombstones`` the row numbers of deleted rows. Migration ``0002_change_tracking``
adds these to older stores, with the triggers that stamp writes bypassing the loaders.
``canonical_loads_applying`` fences a tenant while a load applies its rows in several
transactions (``canonical.ingest``; migration ``0004_load_fence``).
"""

from __future__ import annotations

import re

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, String, Table, Text
from sqlalchemy.types import TypeEngine

from ..store import metadata
from .tables import CANONICAL_TABLES, CanonicalTable, ColumnType

__all__ = [
    "CANONICAL_CHANGES",
    "CANONICAL_LOADS_APPLYING",
    "CANONICAL_TOMBSTONES",
    "ROW_NUMBER_COLUMN",
    "ROW_VERSION_COLUMN",
    "TENANT_COLUMN",
    "sql_table",
    "sql_table_name",
]

TENANT_COLUMN = "TenantId"
ROW_NUMBER_COLUMN = "RowNumber"
ROW_VERSION_COLUMN = "RowVersion"

_SQL_TYPES: dict[ColumnType, type[TypeEngine]] = {
    ColumnType.STRING: Text,
    ColumnType.DATETIME: DateTime,
    ColumnType.BOOLEAN: Boolean,
    ColumnType.INT32: Integer,
}


def sql_table_name(table: CanonicalTable) -> str:
    """``PersonOrganizationRole`` → ``canonical_person_organization_role``."""
    return "canonical_" + re.sub(r"(?<!^)(?=[A-Z])", "_", table.name).lower()


def _build(table: CanonicalTable) -> Table:
    key_columns = set(table.key)
    name = sql_table_name(table)
    return Table(
        name,
        metadata,
        Column(TENANT_COLUMN, String(36), primary_key=True),
        *(
            Column(
                column.name,
                String(64) if column.name in key_columns else _SQL_TYPES[column.type](),
                primary_key=column.name in key_columns,
            )
            for column in table.columns
        ),
        Column(ROW_NUMBER_COLUMN, BigInteger),
        Column(ROW_VERSION_COLUMN, BigInteger),
        Index(f"ix_{name}_row_version", TENANT_COLUMN, ROW_VERSION_COLUMN),
    )


_SQL_TABLES = {table.name: _build(table) for table in CANONICAL_TABLES}

CANONICAL_CHANGES = Table(
    "canonical_changes",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("epoch", String(36), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("next_row_number", BigInteger, nullable=False),
)
"""A tenant's change counters: the last version taken and the next row number to hand out.
``epoch`` (a uuid4, set when the row is created) tells a new counter from an old one."""

CANONICAL_TOMBSTONES = Table(
    "canonical_tombstones",
    metadata,
    Column("tenant_id", String(36), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("row_number", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
    Index("ix_canonical_tombstones_version", "tenant_id", "table_name", "version"),
)
"""One row per deleted canonical row: its tenant, table (CDM name), number and the version
of the deletion."""


CANONICAL_LOADS_APPLYING = Table(
    "canonical_loads_applying",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("touched_at", DateTime, nullable=False),
)
"""A tenant whose load is being applied (on SQLite, in short transactions): exports of the
tenant wait while its row is here; a load that failed half-way leaves it until a later load
of the tenant completes. ``touched_at`` is renewed by every transaction of the load, so a
second load can tell a live load (refused) from a dead one (taken over)."""


def sql_table(table: CanonicalTable | str) -> Table:
    """The SQLAlchemy table of a canonical table (by definition or CDM name)."""
    return _SQL_TABLES[table if isinstance(table, str) else table.name]
