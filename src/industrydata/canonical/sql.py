"""SQL tables of the canonical store, derived from ``CANONICAL_TABLES``.

Each table gets a leading ``TenantId`` column; its primary key is ``TenantId`` plus the
table's natural key. Column names are the CDM attribute names.
"""

from __future__ import annotations

import re

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Table, Text
from sqlalchemy.types import TypeEngine

from ..store import metadata
from .tables import CANONICAL_TABLES, CanonicalTable, ColumnType

__all__ = ["TENANT_COLUMN", "sql_table", "sql_table_name"]

TENANT_COLUMN = "TenantId"

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
    return Table(
        sql_table_name(table),
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
    )


_SQL_TABLES = {table.name: _build(table) for table in CANONICAL_TABLES}


def sql_table(table: CanonicalTable | str) -> Table:
    """The SQLAlchemy table of a canonical table (by definition or CDM name)."""
    return _SQL_TABLES[table if isinstance(table, str) else table.name]
