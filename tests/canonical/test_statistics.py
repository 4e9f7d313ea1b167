"""The hub's statistics count a tenant's rows in each of the 26 canonical tables, and only
that tenant's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert

from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.statistics import count_rows, has_rows
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name

TENANT = "5b2d7f00-0000-4000-8000-000000000001"
OTHER_TENANT = "5b2d7f00-0000-4000-8000-000000000002"
SEEN = datetime(2021, 9, 5, 6, 16, 22)


def _add_people(engine: Engine, tenant: str, count: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(sql_table(table_by_name("Person"))),
            [
                {
                    TENANT_COLUMN: tenant,
                    "Id": f"person-{index}",
                    "FirstSeenDateTime": SEEN,
                    "LastSeenDateTime": SEEN,
                }
                for index in range(count)
            ],
        )


def test_count_rows_empty_store_lists_every_table_at_zero(engine: Engine) -> None:
    assert count_rows(engine, TENANT) == {table.name: 0 for table in CANONICAL_TABLES}


def test_count_rows_counts_only_the_tenant(engine: Engine) -> None:
    _add_people(engine, TENANT, 3)
    _add_people(engine, OTHER_TENANT, 5)

    counts = count_rows(engine, TENANT)

    assert counts["Person"] == 3
    assert list(counts) == [table.name for table in CANONICAL_TABLES]
    assert sum(counts.values()) == 3
    assert count_rows(engine, OTHER_TENANT)["Person"] == 5


def test_has_rows_only_for_a_tenant_with_canonical_rows(engine: Engine) -> None:
    assert not has_rows(engine, TENANT)

    _add_people(engine, OTHER_TENANT, 1)

    assert has_rows(engine, OTHER_TENANT) and not has_rows(engine, TENANT)
