"""Shared helpers of the loader tests: writing uploads, reading the store back, checking
references."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, and_, func, select

from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name


def write_drop(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def with_line(text: str, line: int, content: str | None) -> str:
    """``text`` with physical line ``line`` replaced (appended past the end, removed if None)."""
    lines = text.splitlines()
    if line > len(lines):
        lines.append(content or "")
    elif content is None:
        del lines[line - 1]
    else:
        lines[line - 1] = content
    return "\n".join(lines) + "\n"


def rows_of(engine: Engine, table_name: str, tenant: str) -> list[dict]:
    table = table_by_name(table_name)
    sql = sql_table(table)
    query = (
        select(*(sql.c[name] for name in table.column_names))
        .where(sql.c[TENANT_COLUMN] == tenant)
        .order_by(*(sql.c[name] for name in table.key))
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def whole_store(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every canonical table, of every tenant."""
    with engine.connect() as connection:
        return {
            table.name: sorted(
                tuple(map(str, row)) for row in connection.execute(select(sql_table(table)))
            )
            for table in CANONICAL_TABLES
        }


def _links() -> list[tuple[str, str, str, str]]:
    """(table, column, target table, target column) of every reference a loaded row can hold."""
    links = [
        (table.name, ref.column, ref.to_table, ref.to_column)
        for table in CANONICAL_TABLES
        for ref in table.references
    ]
    for table in CANONICAL_TABLES:
        for column in table.column_names:
            if column.startswith("Ref") and column.endswith("Id") and table.name != "RefDefinition":
                links.append((table.name, column, "RefDefinition", "Id"))
            if column == "SourceSystemId":
                links.append((table.name, column, "SourceSystem", "Id"))
    return links


def dangling(engine: Engine, tenant: str) -> list[str]:
    """References that point at no row of the tenant ("" means no reference)."""
    found = []
    with engine.connect() as connection:
        for table, column, to_table, to_column in _links():
            source, target = sql_table(table).alias("source"), sql_table(to_table).alias("target")
            value = source.c[column]
            joined = source.outerjoin(
                target,
                and_(
                    target.c[TENANT_COLUMN] == source.c[TENANT_COLUMN], target.c[to_column] == value
                ),
            )
            query = (
                select(func.count())
                .select_from(joined)
                .where(
                    source.c[TENANT_COLUMN] == tenant,
                    value.is_not(None),
                    value != "",
                    target.c[to_column].is_(None),
                )
            )
            missing = connection.execute(query).scalar_one()
            if missing:
                found.append(f"{table}.{column}: {missing}")
    return found


def problems_of(report_or_error) -> list[tuple]:
    return [(p.severity, p.file, p.line, p.column, p.value) for p in report_or_error.problems]
