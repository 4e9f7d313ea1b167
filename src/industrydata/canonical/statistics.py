"""Row counts of a tenant's canonical tables: the hub's ``statistics`` and load summaries."""

from __future__ import annotations

from sqlalchemy import Engine, exists, func, literal, or_, select, union_all

from .sql import TENANT_COLUMN, sql_table
from .tables import CANONICAL_TABLES

__all__ = ["count_rows", "has_rows"]


def count_rows(engine: Engine, tenant_id: str) -> dict[str, int]:
    """Rows per canonical table (all 26, by CDM name, in definition order), in one query."""
    counts = union_all(
        *(
            select(literal(table.name).label("name"), func.count().label("rows"))
            .select_from(sql_table(table))
            .where(sql_table(table).c[TENANT_COLUMN] == tenant_id)
            for table in CANONICAL_TABLES
        )
    )
    with engine.connect() as connection:
        found = {name: rows for name, rows in connection.execute(counts)}
    return {table.name: found[table.name] for table in CANONICAL_TABLES}


def has_rows(engine: Engine, tenant_id: str) -> bool:
    """Whether any canonical table holds a row of ``tenant_id`` (one query, stops at the first)."""
    any_row = or_(
        *(
            exists().where(sql_table(table).c[TENANT_COLUMN] == tenant_id)
            for table in CANONICAL_TABLES
        )
    )
    with engine.connect() as connection:
        return bool(connection.execute(select(any_row)).scalar())
