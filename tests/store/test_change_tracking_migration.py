"""Migration 0002_change_tracking: on a store of the old baseline that already holds rows it
adds the columns, index, tables and triggers, numbers the rows (version 1) and gives their
tenants consistent counters; on a store made by the current baseline it adds only what is
missing; its downgrade takes everything away again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, select, text

from industrydata.canonical.sql import CANONICAL_CHANGES, TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name
from industrydata.store import create_store_engine, upgrade_to_head
from industrydata.store.migrate import alembic_config

TENANT = "9a8b7c6d-0000-4000-8000-000000000001"
OTHER_TENANT = "9a8b7c6d-0000-4000-8000-000000000002"
OLD_ROWS = {
    "canonical_person": ('"Id"', [(TENANT, "'p1'"), (TENANT, "'p2'"), (OTHER_TENANT, "'p1'")]),
    "canonical_organization": ('"Id"', [(TENANT, "'o1'"), (TENANT, "'o2'")]),
    "canonical_aad_group_membership": (
        '"GroupObjectId", "UserObjectId"',
        [(TENANT, "'g1', 'u1'"), (TENANT, "'g1', 'u2'")],
    ),
}
TRIGGERS = {
    f"{sql_table(table).name}_{kind}"
    for table in CANONICAL_TABLES
    for kind in ("stamp_insert", "stamp_update", "tombstone")
}


@pytest.fixture
def migrations(store_url: str) -> Iterator[tuple[Engine, Config]]:
    """The store's engine and its Alembic configuration; the store is back at head after
    the test (the PostgreSQL database is shared by the session's tests)."""
    engine = create_store_engine(store_url, pooled=False)
    try:
        yield engine, alembic_config(engine)
    finally:
        upgrade_to_head(engine)
        engine.dispose()


def _insert_old_rows(engine: Engine) -> None:
    """Rows as the old baseline's code wrote them: no change tracking at all."""
    with engine.begin() as connection:
        for name, (columns, rows) in OLD_ROWS.items():
            values = ", ".join(f"('{tenant}', {key})" for tenant, key in rows)
            connection.execute(text(f'INSERT INTO {name} ("TenantId", {columns}) VALUES {values}'))


def _stamps(engine: Engine) -> dict[str, list[tuple[str, int | None, int | None]]]:
    """Per table holding rows: (tenant, RowNumber, RowVersion) of each row."""
    found = {}
    with engine.connect() as connection:
        for name in OLD_ROWS:
            table = next(table for table in CANONICAL_TABLES if sql_table(table).name == name)
            sql = sql_table(table)
            query = select(sql.c[TENANT_COLUMN], sql.c.RowNumber, sql.c.RowVersion)
            found[name] = [tuple(row) for row in connection.execute(query)]
    return found


def _counters(engine: Engine) -> dict[str, tuple[str, int, int]]:
    counter = CANONICAL_CHANGES
    with engine.connect() as connection:
        rows = connection.execute(select(counter))
        return {row.tenant_id: (row.epoch, row.version, row.next_row_number) for row in rows}


def _triggers(engine: Engine) -> list[str]:
    """The change-tracking triggers (the task queue's own, on PostgreSQL, are not ours)."""
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if engine.dialect.name == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgname NOT LIKE 'procrastinate%'"
    )
    with engine.connect() as connection:
        return sorted(connection.execute(text(query)).scalars())


def _assert_numbered_once(engine: Engine) -> None:
    """Every old row numbered (distinct per tenant and table) at version 1, and each tenant's
    counter past its highest number."""
    stamps = _stamps(engine)
    counters = _counters(engine)
    assert set(counters) == {TENANT, OTHER_TENANT}
    for tenant, (epoch, version, next_number) in counters.items():
        assert uuid.UUID(epoch).version == 4 and version == 1
        for name, rows in stamps.items():
            numbers = [number for owner, number, _ in rows if owner == tenant]
            assert len(set(numbers)) == len(numbers), name
            assert all(number is not None and 0 < number < next_number for number in numbers)
    assert {version for rows in stamps.values() for _, _, version in rows} == {1}
    assert counters[TENANT][0] != counters[OTHER_TENANT][0]


def test_downgrade_removes_change_tracking(migrations: tuple[Engine, Config]) -> None:
    engine, config = migrations

    command.downgrade(config, "0001_baseline")

    inspector = inspect(engine)
    person = table_by_name("Person")
    columns = [column["name"] for column in inspector.get_columns("canonical_person")]
    assert columns == [TENANT_COLUMN, *person.column_names]
    assert "ix_canonical_person_row_version" not in {
        index["name"] for index in inspector.get_indexes("canonical_person")
    }
    assert {"canonical_changes", "canonical_tombstones"}.isdisjoint(inspector.get_table_names())
    assert _triggers(engine) == []


def test_upgrade_numbers_the_rows_of_an_old_store(migrations: tuple[Engine, Config]) -> None:
    engine, config = migrations
    command.downgrade(config, "0001_baseline")
    _insert_old_rows(engine)

    upgrade_to_head(engine)

    _assert_numbered_once(engine)
    inspector = inspect(engine)
    for table in CANONICAL_TABLES:
        name = sql_table(table).name
        columns = [column["name"] for column in inspector.get_columns(name)]
        assert columns == [TENANT_COLUMN, *table.column_names, "RowNumber", "RowVersion"]
        assert f"ix_{name}_row_version" in {index["name"] for index in inspector.get_indexes(name)}
    assert set(_triggers(engine)) == TRIGGERS


def test_rows_written_after_the_upgrade_continue_the_counters(
    migrations: tuple[Engine, Config],
) -> None:
    engine, config = migrations
    command.downgrade(config, "0001_baseline")
    _insert_old_rows(engine)
    upgrade_to_head(engine)
    before = _stamps(engine)["canonical_person"]

    with engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO canonical_person (\"TenantId\", \"Id\") VALUES ('{TENANT}', 'p3')")
        )
        connection.execute(
            text("UPDATE canonical_person SET \"Surname\" = 'x' WHERE \"Id\" = 'p1'")
        )

    changed = [row for row in _stamps(engine)["canonical_person"] if row not in before]
    old_numbers = {number for tenant, number, _ in before if tenant == TENANT}
    new = [row for row in changed if row[0] == TENANT and row[1] not in old_numbers]
    # p3 inserted, and p1 updated in both tenants: all stamped above the migrated version 1.
    assert len(new) == 1 and len(changed) == 3
    assert all(version > 1 for _, _, version in changed)
    assert _counters(engine)[OTHER_TENANT][1] > 1


def test_upgrade_stamps_rows_a_current_baseline_store_holds(
    migrations: tuple[Engine, Config],
) -> None:
    engine, config = migrations
    command.downgrade(config, "base")
    command.upgrade(config, "0001_baseline")
    _insert_old_rows(engine)
    assert {number for rows in _stamps(engine).values() for _, number, _ in rows} == {None}

    upgrade_to_head(engine)

    _assert_numbered_once(engine)
    assert set(_triggers(engine)) == TRIGGERS


def test_upgrade_adds_nothing_that_is_there(migrations: tuple[Engine, Config]) -> None:
    engine, config = migrations
    triggers = _triggers(engine)
    command.stamp(config, "0001_baseline")

    upgrade_to_head(engine)

    assert _triggers(engine) == triggers and set(triggers) == TRIGGERS
    indexes = [index["name"] for index in inspect(engine).get_indexes("canonical_person")]
    assert indexes.count("ix_canonical_person_row_version") == 1
    assert _counters(engine) == {}
