"""Change tracking: every load takes one new version for the rows it writes and gives new
rows fresh row numbers that updates keep; a load that changes nothing in a table without
LastSeen leaves its rows' versions alone; writes that bypass the loaders are stamped by the
store's triggers, deletions leave tombstones; the reader returns the counters, the rows
changed since a version (with their row numbers) and the row numbers removed since it, on
SQLite and PostgreSQL alike.

On SQLite a test reads with ADBC (the reader) only after its last use of the engine: the
conftest's pooled connection and ADBC's own copy of SQLite must not take turns on one WAL
database (see the ``engine`` fixture)."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.changes import ChangePosition, begin_change
from industrydata.canonical.ingest import load_sds_csv
from industrydata.canonical.ingest._rows import row_columns
from industrydata.canonical.ingest._upsert import TableUpsert
from industrydata.canonical.ingest.sds_lake import SNAPSHOT_MANIFEST, load_sds_lake
from industrydata.canonical.reader import ROW_NUMBER_FIELD, open_store_reader
from industrydata.canonical.sql import CANONICAL_CHANGES, TENANT_COLUMN, sql_table
from industrydata.canonical.statistics import count_rows
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name
from industrydata.lake import cdm

from tests.canonical.ingest_support import write_drop
from tests.conftest import POSTGRES_ONLY

TENANT = "7c1d2e3f-0000-4000-8000-000000000001"
OTHER_TENANT = "7c1d2e3f-0000-4000-8000-000000000002"
FIRST_LOAD = datetime(2025, 9, 1, 6, 0, 0)
SECOND_LOAD = datetime(2025, 9, 2, 6, 0, 0)
THIRD_LOAD = datetime(2025, 9, 3, 6, 0, 0)

DROP = {
    "orgs.csv": """sourcedId,name,type,parentSourcedId
d1,District One,district,
s1,School One,school,d1
""",
    "academicSessions.csv": """sourcedId,title,type,schoolYear,startDate,endDate
y1,Year 2025,schoolYear,2025,2024-08-26,2025-06-13
""",
    "users.csv": """sourcedId,username,givenName,familyName,email
u1,ann@x.example,Ann,Lee,ann@x.example
u2,bob@x.example,Bob,Ray,bob@x.example
t1,tia@x.example,Tia,Fox,tia@x.example
""",
    "roles.csv": """userSourcedId,orgSourcedId,role,sessionSourcedId
u1,s1,student,y1
u2,s1,student,y1
t1,s1,teacher,y1
""",
    "classes.csv": """sourcedId,orgSourcedId,title,sessionSourcedIds
k1,s1,Algebra A,y1
""",
    "enrollments.csv": """classSourcedId,userSourcedId,role
k1,u1,student
k1,u2,student
k1,t1,teacher
""",
}


def _load(engine: Engine, folder: Path, files: dict[str, str], now: datetime) -> None:
    report = load_sds_csv(engine, write_drop(folder, files), tenant_id=TENANT, now=now)
    assert report.errors == 0, report.problems


def _stamped(engine: Engine, table_name: str, tenant: str = TENANT) -> list[dict]:
    """The tenant's rows of a table with their RowNumber and RowVersion."""
    sql = sql_table(table_name)
    with engine.connect() as connection:
        rows = connection.execute(select(sql).where(sql.c[TENANT_COLUMN] == tenant))
        return [dict(row._mapping) for row in rows]


def _stamps(engine: Engine, tenant: str = TENANT) -> dict[str, dict[tuple, tuple[int, int]]]:
    """Per table: natural key → (RowNumber, RowVersion)."""
    return {
        table.name: {
            tuple(row[name] for name in table.key): (row["RowNumber"], row["RowVersion"])
            for row in _stamped(engine, table.name, tenant)
        }
        for table in CANONICAL_TABLES
    }


def _counter(engine: Engine, tenant: str = TENANT) -> tuple[int, int] | None:
    """(version, next_row_number) of the tenant's counter row."""
    counter = CANONICAL_CHANGES
    with engine.connect() as connection:
        found = connection.execute(
            select(counter.c.version, counter.c.next_row_number).where(
                counter.c.tenant_id == tenant
            )
        ).first()
    return None if found is None else (found[0], found[1])


def _position(engine: Engine, tenant: str = TENANT) -> ChangePosition:
    """The tenant's counters read with SQLAlchemy (the reader's are checked against it)."""
    counter = CANONICAL_CHANGES
    with engine.connect() as connection:
        epoch, version = connection.execute(
            select(counter.c.epoch, counter.c.version).where(counter.c.tenant_id == tenant)
        ).one()
    return ChangePosition(epoch, version)


def _read_position(store_url: str, tenant: str = TENANT) -> ChangePosition | None:
    with open_store_reader(store_url) as reader:
        return reader.change_position(tenant)


def _execute(engine: Engine, *statements: str) -> None:
    """Statements as a DBA would run them, in one transaction."""
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def _insert_people(engine: Engine, *ids: str, tenant: str = TENANT) -> None:
    values = ", ".join(f"('{tenant}', '{id_}', 'x')" for id_ in ids)
    _execute(engine, f'INSERT INTO canonical_person ("TenantId", "Id", "Surname") VALUES {values}')


def _person_stamps(engine: Engine, tenant: str = TENANT) -> dict[str, tuple[int, int]]:
    return {key[0]: stamp for key, stamp in _stamps(engine, tenant)["Person"].items()}


def _ids(batches: list[pa.RecordBatch], column: str = "Id") -> list:
    return [value for batch in batches for value in batch.column(column).to_pylist()]


def test_load_stamps_its_rows_with_one_version_and_distinct_row_numbers(
    engine: Engine, store_url: str, tmp_path: Path
) -> None:
    _load(engine, tmp_path / "drop", DROP, FIRST_LOAD)

    stamps = _stamps(engine)
    rows = count_rows(engine, TENANT)
    version, next_number = _counter(engine) or (0, 0)
    position = _read_position(store_url)

    assert position is not None and position.version == version == 1
    assert uuid.UUID(position.epoch).version == 4
    assert sum(map(len, stamps.values())) == sum(rows.values()) > 0
    for name, table_rows in stamps.items():
        numbers = [number for number, _ in table_rows.values()]
        assert len(set(numbers)) == len(numbers), name
        assert all(0 < number < next_number for number in numbers), name
        assert {stamp_version for _, stamp_version in table_rows.values()} <= {version}, name


def test_reload_takes_a_new_version_and_keeps_row_numbers(
    engine: Engine, store_url: str, tmp_path: Path
) -> None:
    _load(engine, tmp_path / "first", DROP, FIRST_LOAD)
    first_position, first = _position(engine), _stamps(engine)

    _load(engine, tmp_path / "second", DROP, SECOND_LOAD)
    second_position, second = _position(engine), _stamps(engine)

    assert second_position == ChangePosition(first_position.epoch, first_position.version + 1)
    assert _read_position(store_url) == second_position
    for name in first:
        assert {key: number for key, (number, _) in second[name].items()} == {
            key: number for key, (number, _) in first[name].items()
        }, name
    # Rows with LastSeen changed (LastSeen moved); unchanged rows of other tables did not.
    assert {version for _, version in second["Person"].values()} == {second_position.version}
    assert {version for _, version in second["PersonIdentifier"].values()} == {1}
    assert {version for _, version in second["PersonEmailAddress"].values()} == {1}


def test_reload_restamps_changed_and_absent_rows_of_tables_without_last_seen(
    engine: Engine, store_url: str, tmp_path: Path
) -> None:
    _load(engine, tmp_path / "first", DROP, FIRST_LOAD)
    changed = DROP | {
        "users.csv": """sourcedId,username,givenName,familyName,email
u1,ann@x.example,Ann,Lee,ann@x.example
u2,bob@x.example,Bob,Ray,robert@x.example
""",
        "roles.csv": "userSourcedId,orgSourcedId,role,sessionSourcedId\nu1,s1,student,y1\n"
        "u2,s1,student,y1\n",
        "enrollments.csv": "classSourcedId,userSourcedId,role\nk1,u1,student\nk1,u2,student\n",
    }

    _load(engine, tmp_path / "second", changed, SECOND_LOAD)

    version = _counter(engine)
    assert version is not None and version[0] == 2
    emails = {row["EmailAddress"]: row for row in _stamped(engine, "PersonEmailAddress")}
    assert emails["ann@x.example"]["RowVersion"] == 1
    assert emails["robert@x.example"]["RowVersion"] == 2
    identifiers = _stamped(engine, "PersonIdentifier")
    absent = [row for row in identifiers if not row["IsPresentInSource"]]
    assert absent and {row["RowVersion"] for row in absent} == {2}
    assert {row["RowVersion"] for row in identifiers if row["IsPresentInSource"]} == {1}
    enrollments = _stamped(engine, "Enrollment")
    (gone,) = [row for row in enrollments if not row["IsActiveInSession"]]
    assert gone["LastSeenDateTime"] == FIRST_LOAD and gone["RowVersion"] == 2


def test_a_chunk_of_many_rows_repeating_a_key_is_written_once_per_key(engine: Engine) -> None:
    # More rows than one SQLite statement takes, the repeated key inside the first group. The
    # repeat updates a row to the version it already has, which the update trigger cannot
    # tell from a write that left the version alone: it takes the next version.
    table = table_by_name("PersonEmailAddress")
    columns = row_columns(table)

    def row(id_: str, email: str) -> tuple:
        values = {TENANT_COLUMN: TENANT, "Id": id_, "EmailAddress": email, "PriorityOrder": 1}
        return tuple(values.get(name) for name in columns)

    rows = [row(f"e{n:04d}", f"{n}@x.example") for n in range(250)]
    rows.insert(2, row("e0001", "changed@x.example"))

    with engine.begin() as connection:
        stamp = begin_change(connection, TENANT)
        upsert = TableUpsert(connection, table, tenant_id=TENANT, now=FIRST_LOAD, stamp=stamp)
        upsert.write(rows)

    stored = {row["Id"]: row for row in _stamped(engine, "PersonEmailAddress")}
    assert len(stored) == 250 and upsert.written == 251
    assert stored["e0001"]["EmailAddress"] == "changed@x.example"
    assert stored["e0249"]["EmailAddress"] == "249@x.example"
    assert len({row["RowNumber"] for row in stored.values()}) == 250
    assert stored.pop("e0001")["RowVersion"] == stamp.version + 1
    assert {row["RowVersion"] for row in stored.values()} == {stamp.version}


def test_sql_writes_are_stamped_by_the_triggers(
    engine: Engine, store_url: str, tmp_path: Path
) -> None:
    _load(engine, tmp_path / "drop", DROP, FIRST_LOAD)
    loaded_version, loaded_next = _counter(engine) or (0, 0)
    loaded_numbers = {number for number, _ in _person_stamps(engine).values()}

    _insert_people(engine, "p1", "p2")
    inserted = _person_stamps(engine)
    after_insert = _counter(engine) or (0, 0)

    assert inserted["p1"][0] != inserted["p2"][0]
    assert {inserted["p1"][0], inserted["p2"][0]}.isdisjoint(loaded_numbers)
    assert min(inserted["p1"][0], inserted["p2"][0]) >= loaded_next
    assert max(inserted["p1"][0], inserted["p2"][0]) < after_insert[1]
    assert loaded_version < inserted["p1"][1] <= after_insert[0]

    _execute(engine, """UPDATE canonical_person SET "Surname" = 'changed' WHERE "Id" = 'p1'""")
    updated = _person_stamps(engine)
    after_update = _counter(engine) or (0, 0)

    assert updated["p1"][0] == inserted["p1"][0]
    assert after_insert[0] < updated["p1"][1] <= after_update[0]
    assert updated["p2"] == inserted["p2"]

    _execute(engine, """DELETE FROM canonical_person WHERE "Id" = 'p2'""")
    after_delete = _counter(engine) or (0, 0)

    assert after_delete[0] > after_update[0]
    assert "p2" not in _person_stamps(engine)
    with open_store_reader(store_url) as reader:
        removed = reader.removed_row_numbers(table_by_name("Person"), TENANT, after_update[0])
    assert removed.to_pylist() == [inserted["p2"][0]]


def test_an_update_that_sets_the_version_itself_is_not_restamped(engine: Engine) -> None:
    _insert_people(engine, "p1")
    before = _counter(engine)
    assert before is not None

    _execute(
        engine,
        f"""UPDATE canonical_person SET "Surname" = 'y', "RowVersion" = {before[0] + 7}""",
    )

    assert _person_stamps(engine)["p1"][1] == before[0] + 7
    assert _counter(engine) == before


def test_a_bulk_sql_update_stamps_every_row_above_the_versions_read_before(
    engine: Engine,
) -> None:
    _insert_people(engine, *(f"p{n}" for n in range(50)))
    before = _position(engine)
    numbers = {id_: number for id_, (number, _) in _person_stamps(engine).items()}

    _execute(engine, """UPDATE canonical_person SET "Surname" = 'bulk'""")

    after = _position(engine)
    stamps = _person_stamps(engine)
    assert {id_: number for id_, (number, _) in stamps.items()} == numbers
    assert all(before.version < version <= after.version for _, version in stamps.values())


def test_trigger_counters_are_per_tenant(engine: Engine, store_url: str) -> None:
    _insert_people(engine, "p1")
    _insert_people(engine, "q1", "q2", tenant=OTHER_TENANT)

    numbers = sorted(number for number, _ in _person_stamps(engine, OTHER_TENANT).values())
    mine, theirs = _read_position(store_url), _read_position(store_url, OTHER_TENANT)

    assert numbers == [1, 2]
    assert mine is not None and theirs is not None and mine.epoch != theirs.epoch


def test_changed_since_reads_exactly_the_rows_changed_after_a_version(
    engine: Engine, store_url: str, tmp_path: Path
) -> None:
    _load(engine, tmp_path / "drop", DROP, FIRST_LOAD)
    loaded = _position(engine)
    person, organization = table_by_name("Person"), table_by_name("Organization")
    ann = next(row["Id"] for row in _stamped(engine, "Person") if row["GivenName"] == "Ann")
    bob = next(row["Id"] for row in _stamped(engine, "Person") if row["GivenName"] == "Bob")
    _insert_people(engine, "p-new")
    _execute(
        engine,
        f"""UPDATE canonical_person SET "Surname" = 'Moved' WHERE "Id" = '{ann}'""",
        f"""DELETE FROM canonical_person WHERE "Id" = '{bob}'""",
    )
    stamps = _person_stamps(engine)

    with open_store_reader(store_url) as reader:
        now = reader.change_position(TENANT)
        changed = list(
            reader.read_table(person, TENANT, changed_since=loaded.version, row_numbers=True)
        )
        plain = list(reader.read_table(person, TENANT, changed_since=loaded.version))
        unchanged = list(reader.read_table(organization, TENANT, changed_since=loaded.version))
        everything = list(reader.read_table(person, TENANT, changed_since=0))
        nothing = list(reader.read_table(person, TENANT, changed_since=now.version if now else 0))

    assert sorted(_ids(changed)) == sorted([ann, "p-new"])
    assert all(batch.schema == arrow_schema(person).append(ROW_NUMBER_FIELD) for batch in changed)
    assert dict(zip(_ids(changed), _ids(changed, "RowNumber"), strict=True)) == {
        id_: stamps[id_][0] for id_ in (ann, "p-new")
    }
    assert sorted(_ids(plain)) == sorted([ann, "p-new"])
    assert all(batch.schema == arrow_schema(person) for batch in plain)
    assert unchanged == [] and nothing == []
    assert sorted(_ids(everything)) == sorted(stamps)


@pytest.mark.parametrize("shared", [False, True], ids=["tenant-alone", "shared-table"])
def test_read_table_row_numbers_adds_a_trailing_int64_column(
    engine: Engine, store_url: str, shared: bool
) -> None:
    person = table_by_name("Person")
    _insert_people(engine, "p3", "p1", "p2")
    if shared:
        _insert_people(engine, "p0", tenant=OTHER_TENANT)
    stamps = _person_stamps(engine)

    with open_store_reader(store_url) as reader:
        numbered = list(reader.read_table(person, TENANT, row_numbers=True, batch_rows=2))
        plain = list(reader.read_table(person, TENANT))

    expected = arrow_schema(person).append(pa.field("RowNumber", pa.int64(), nullable=False))
    assert numbered and all(batch.schema == expected for batch in numbered)
    assert all(batch.schema == arrow_schema(person) for batch in plain)
    assert _ids(numbered) == _ids(plain)
    assert _ids(numbered, "RowNumber") == [stamps[id_][0] for id_ in _ids(plain)]


def test_removed_row_numbers_are_the_tombstones_after_a_version(
    engine: Engine, store_url: str
) -> None:
    _insert_people(engine, "p1", "p2", "p3")
    _insert_people(engine, "p1", tenant=OTHER_TENANT)
    numbers = {id_: number for id_, (number, _) in _person_stamps(engine).items()}
    start = _position(engine)
    _execute(engine, """DELETE FROM canonical_person WHERE "Id" = 'p1'""")
    middle = _position(engine)
    _execute(engine, """DELETE FROM canonical_person WHERE "Id" IN ('p2', 'p3')""")
    end = _position(engine)
    person, course = table_by_name("Person"), table_by_name("Course")

    with open_store_reader(store_url) as reader:
        since_start = reader.removed_row_numbers(person, TENANT, start.version)
        since_middle = reader.removed_row_numbers(person, TENANT, middle.version)
        since_end = reader.removed_row_numbers(person, TENANT, end.version)
        other_table = reader.removed_row_numbers(course, TENANT, 0)

    assert sorted(since_start.to_pylist()) == sorted(numbers.values())
    assert sorted(since_middle.to_pylist()) == sorted([numbers["p2"], numbers["p3"]])
    assert since_end.to_pylist() == [] and other_table.to_pylist() == []
    assert {array.type for array in (since_start, since_end, other_table)} == {pa.int64()}


def test_change_position_is_none_for_a_tenant_without_counters(
    engine: Engine, store_url: str
) -> None:
    _insert_people(engine, "p1", tenant=OTHER_TENANT)
    theirs = _position(engine, OTHER_TENANT)

    assert _read_position(store_url) is None
    assert _read_position(store_url, OTHER_TENANT) == theirs


def test_sds_lake_load_stamps_its_rows_and_tombstones_the_rows_it_replaces(
    engine: Engine, store_url: str, tmp_path: Path
) -> None:
    _insert_people(engine, "old")
    (old_number, _) = _person_stamps(engine)["old"]
    before = _position(engine)
    folder = tmp_path / "roster" / "2026-11-27T06-00-00"
    (folder / "Person").mkdir(parents=True)
    (folder / "Person" / "part-00000-0f1e2d3c-c000.csv").write_text(
        "new,2021-07-09T06:05:11.000Z,2021-09-05T06:16:22.000Z,,,,,,\n"
        "newer,2021-07-09T06:05:11.000Z,2021-09-05T06:16:22.000Z,,,,,,\n",
        encoding="utf-8",
    )
    manifest = cdm.snapshot_manifest(folder.name, [table_by_name("Person")])
    (folder / SNAPSHOT_MANIFEST).write_bytes(cdm.render(manifest))

    load_sds_lake(engine, folder, tenant_id=TENANT)

    after = _position(engine)
    stamps = _person_stamps(engine)
    assert after.epoch == before.epoch
    assert sorted(stamps) == ["new", "newer"]
    assert len({number for number, _ in stamps.values()} | {old_number}) == 3
    assert all(before.version < version <= after.version for _, version in stamps.values())
    with open_store_reader(store_url) as reader:
        removed = reader.removed_row_numbers(table_by_name("Person"), TENANT, before.version)
    assert removed.to_pylist() == [old_number]


@pytest.mark.parametrize("store_url", POSTGRES_ONLY, indirect=True)
def test_a_writer_holds_the_tenants_counter_until_it_commits(
    engine: Engine, store_url: str
) -> None:
    """On PostgreSQL (SQLite serialises all writers with its one write lock anyway)."""
    other = create_engine(make_url(store_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.begin() as connection:
            stamp = begin_change(connection, TENANT)
            with other.connect() as blocked:
                blocked.execute(text("SET lock_timeout = '200ms'"))
                with pytest.raises(OperationalError, match="lock timeout"):
                    blocked.execute(
                        text(
                            'INSERT INTO canonical_person ("TenantId", "Id")'
                            f" VALUES ('{TENANT}', 'p1')"
                        )
                    )
        _insert_people(engine, "p2")
    finally:
        other.dispose()

    assert _person_stamps(engine)["p2"][1] == stamp.version + 1
