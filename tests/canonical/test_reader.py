"""Reading the store yields the tenant's rows of one table as Arrow batches in the table's
schema, streamed in bounded batches, on SQLite and PostgreSQL alike, in an order two reads of
unchanged data share (natural-key order, except that SQLite reads a table holding the tenant
alone in storage order, which updates do not change); one reader sees one consistent state
of the store."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import Engine, insert, update

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.reader import open_store_reader, read_table
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CanonicalTable, table_by_name

TENANT = "0d6a8e4c-6b8b-4bd4-9d8e-111111111111"
OTHER_TENANT = "0d6a8e4c-6b8b-4bd4-9d8e-222222222222"
SEEN = datetime(2021, 9, 5, 6, 16, 22, 123000)


def _insert(engine: Engine, table: CanonicalTable, rows: list[dict], tenant: str = TENANT) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(sql_table(table)), [{TENANT_COLUMN: tenant, **row} for row in rows]
        )


def _rows(batches) -> list[dict]:
    return [row for batch in batches for row in batch.to_pylist()]


def test_read_table_round_trips_nulls_empty_strings_booleans_and_times(
    engine: Engine, store_url: str
) -> None:
    table = table_by_name("Enrollment")
    row = {name: None for name in table.column_names}
    _insert(
        engine,
        table,
        [
            row
            | {
                "Id": "a",
                "ExternalId": "",
                "FirstSeenDateTime": SEEN,
                "IsActiveInSession": True,
                "IsPrimaryStaffForSection": False,
            },
            row | {"Id": "b", "ExternalId": 'with "quotes", commas\nand é'},
        ],
    )

    batches = list(read_table(store_url, table, TENANT))

    assert all(batch.schema == arrow_schema(table) for batch in batches)
    first, second = _rows(batches)
    assert first["ExternalId"] == ""
    assert first["FirstSeenDateTime"] == SEEN.replace(tzinfo=timezone.utc)
    assert first["IsActiveInSession"] is True
    assert first["IsPrimaryStaffForSection"] is False
    assert first["LastSeenDateTime"] is None
    assert first["PersonId"] is None
    assert second["ExternalId"] == 'with "quotes", commas\nand é'
    assert second["IsActiveInSession"] is None


def test_read_table_round_trips_int32(engine: Engine, store_url: str) -> None:
    table = table_by_name("RefDefinition")
    _insert(engine, table, [{"Id": "1", "SortOrder": 2147483647}, {"Id": "2", "SortOrder": None}])

    rows = _rows(read_table(store_url, table, TENANT))

    assert [row["SortOrder"] for row in rows] == [2147483647, None]


def test_read_table_returns_only_the_tenants_rows(engine: Engine, store_url: str) -> None:
    table = table_by_name("SourceSystem")
    _insert(engine, table, [{"Id": "mine", "Name": "a"}])
    _insert(engine, table, [{"Id": "theirs", "Name": "b"}], tenant=OTHER_TENANT)

    assert [row["Id"] for row in _rows(read_table(store_url, table, TENANT))] == ["mine"]


def test_read_table_quoting_tenant_id_is_safe(engine: Engine, store_url: str) -> None:
    table = table_by_name("SourceSystem")
    odd_tenant = "o'brien\\x"
    _insert(engine, table, [{"Id": "s", "Name": "a"}], tenant=odd_tenant)

    assert [row["Id"] for row in _rows(read_table(store_url, table, odd_tenant))] == ["s"]
    assert _rows(read_table(store_url, table, "o")) == []


def test_read_table_shared_table_orders_by_natural_key(engine: Engine, store_url: str) -> None:
    table = table_by_name("AadGroupMembership")
    keys = [("g2", "u1"), ("g1", "u2"), ("g1", "u1"), ("g3", "u0")]
    _insert(engine, table, [{"GroupObjectId": g, "UserObjectId": u} for g, u in keys])
    _insert(engine, table, [{"GroupObjectId": "g0", "UserObjectId": "u0"}], tenant=OTHER_TENANT)

    rows = _rows(read_table(store_url, table, TENANT))

    assert [(row["GroupObjectId"], row["UserObjectId"]) for row in rows] == sorted(keys)
    assert list(rows[0]) == table.column_names


def test_read_table_one_tenant_table_keeps_its_order_across_updates(
    engine: Engine, store_url: str
) -> None:
    table = table_by_name("Person")
    _insert(engine, table, [{"Id": key, "Surname": "x"} for key in ("p3", "p1", "p4", "p2")])
    first = [row["Id"] for row in _rows(read_table(store_url, table, TENANT))]
    person = sql_table(table)
    with engine.begin() as connection:
        connection.execute(update(person).where(person.c.Id == "p1").values(Surname="changed"))

    again = _rows(read_table(store_url, table, TENANT))

    assert sorted(first) == ["p1", "p2", "p3", "p4"]
    assert [row["Id"] for row in again] == first
    assert {row["Id"]: row["Surname"] for row in again}["p1"] == "changed"


def test_read_table_leading_nulls_keep_column_types(engine: Engine, store_url: str) -> None:
    # ADBC SQLite infers types from the first batch: 2100 leading NULLs must not make
    # these columns int64 (which used to fail with "Type mismatch ... got STRING").
    table = table_by_name("Course")
    rows = [
        {
            "Id": f"{n:06d}",
            "Name": None if n < 2100 else f"Course {n}",
            "FirstSeenDateTime": None if n < 2100 else SEEN,
            "IsActiveInSession": None if n < 2100 else n % 2 == 0,
        }
        for n in range(2500)
    ]
    _insert(engine, table, rows)

    read = _rows(read_table(store_url, table, TENANT, batch_rows=1000))

    assert len(read) == 2500
    assert read[2099]["Name"] is None
    assert read[2100]["Name"] == "Course 2100"
    assert read[2100]["FirstSeenDateTime"] == SEEN.replace(tzinfo=timezone.utc)
    assert read[2101]["IsActiveInSession"] is False


def test_read_table_yields_batches_of_at_most_batch_rows(engine: Engine, store_url: str) -> None:
    table = table_by_name("SourceSystem")
    _insert(engine, table, [{"Id": f"{n:03d}", "Name": "x"} for n in range(50)])

    sizes = [batch.num_rows for batch in read_table(store_url, table, TENANT, batch_rows=7)]

    assert sum(sizes) == 50
    assert max(sizes) <= 7
    assert min(sizes) > 0


def test_read_table_empty_table_yields_nothing(store_url: str) -> None:
    assert list(read_table(store_url, table_by_name("Person"), TENANT)) == []


@pytest.mark.parametrize("bad", [{"batch_rows": 0}, {"tenant_id": ""}])
def test_read_table_bad_argument_raises(store_url: str, bad: dict) -> None:
    arguments = {"tenant_id": TENANT, "batch_rows": 10} | bad
    with pytest.raises(ValueError):
        list(read_table(store_url, table_by_name("Person"), **arguments))


def _insert_from_another_process(store_url: str, table: CanonicalTable, row: dict) -> None:
    """A concurrent writer; another process, as SQLite's two copies must not share this one."""
    script = (
        "import sys, json\n"
        "from sqlalchemy import insert\n"
        "from industrydata.canonical import sql_table, TENANT_COLUMN\n"
        "from industrydata.store import create_store_engine\n"
        "url, name, tenant, row = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])\n"
        "with create_store_engine(url).begin() as connection:\n"
        "    connection.execute(insert(sql_table(name)), [{TENANT_COLUMN: tenant, **row}])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, store_url, table.name, TENANT, json.dumps(row)], check=True
    )


def test_open_store_reader_sees_one_state_across_tables(engine: Engine, store_url: str) -> None:
    person, source = table_by_name("Person"), table_by_name("SourceSystem")
    _insert(engine, person, [{"Id": "p1"}])

    with open_store_reader(store_url) as reader:
        assert len(_rows(reader.read_table(person, TENANT))) == 1
        _insert_from_another_process(store_url, source, {"Id": "s-after", "Name": "late"})
        _insert_from_another_process(store_url, person, {"Id": "p2"})
        late_sources = _rows(reader.read_table(source, TENANT))
        late_people = _rows(reader.read_table(person, TENANT))

    assert late_sources == []
    assert [row["Id"] for row in late_people] == ["p1"]
    assert len(_rows(read_table(store_url, source, TENANT))) == 1


def test_read_table_stopped_early_leaves_the_reader_usable(engine: Engine, store_url: str) -> None:
    person, source = table_by_name("Person"), table_by_name("SourceSystem")
    _insert(engine, person, [{"Id": f"p{n:03d}"} for n in range(100)])
    _insert(engine, source, [{"Id": "s1", "Name": "a"}])

    with open_store_reader(store_url) as reader:
        batches = reader.read_table(person, TENANT, batch_rows=10)
        first = next(batches)
        batches.close()
        sources = _rows(reader.read_table(source, TENANT))

    assert 0 < first.num_rows <= 10
    assert [row["Id"] for row in sources] == ["s1"]


def _read_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "industrydata-store-read"]


def test_a_small_table_is_read_without_a_thread_and_a_larger_one_with_one(
    engine: Engine, store_url: str
) -> None:
    person = table_by_name("Person")
    _insert(engine, person, [{"Id": f"p{n:03d}"} for n in range(100)])

    with open_store_reader(store_url) as reader:
        small = [bool(_read_threads()) for _ in reader.read_table(person, TENANT)]
        larger = [bool(_read_threads()) for _ in reader.read_table(person, TENANT, batch_rows=10)]

    assert small == [False]
    assert larger[:2] == [False, False] and any(larger[2:])


def test_open_store_reader_closing_stops_unfinished_reads(engine: Engine, store_url: str) -> None:
    person = table_by_name("Person")
    _insert(engine, person, [{"Id": f"p{n:03d}"} for n in range(100)])

    with open_store_reader(store_url) as reader:
        unfinished = reader.read_table(person, TENANT, batch_rows=10)
        next(unfinished)

    with pytest.raises(RuntimeError, match="closed before the table was read"):
        next(unfinished)
