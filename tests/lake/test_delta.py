"""The delta writer keeps one Delta table per canonical table equal to the rows it is given:
the first run creates every table with typed columns (empty ones too); each later run makes
exactly one commit per table carrying the run id, holding only the rows added, changed and
removed (nulls compared as values); a retried or stale run commits nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.tables import CANONICAL_TABLES, CanonicalTable, table_by_name
from industrydata.errors import ExportError, InvalidDestination
from industrydata.lake import LocalDestination, MemoryDestination, SnapshotResult, write_delta
from industrydata.lake.delta import APP_ID, RUN_ID_KEY, transaction_version

UTC = timezone.utc
FIRST_RUN = datetime(2026, 11, 27, 6, 0, 0)
SEEN = datetime(2021, 9, 5, 6, 16, 22, 5000, UTC)
PERSON = table_by_name("Person")
MEMBERSHIP = table_by_name("AadGroupMembership")

_DELTA_TYPES = {
    pa.string(): pa.string(),
    pa.timestamp("ms", tz="UTC"): pa.timestamp("us", tz="UTC"),
    pa.bool_(): pa.bool_(),
    pa.int32(): pa.int32(),
}


def _rows(table: CanonicalTable, rows: list[dict]) -> pa.Table:
    full = [{name: row.get(name) for name in table.column_names} for row in rows]
    return pa.Table.from_pylist(full, schema=arrow_schema(table))


def _write(
    root: Path,
    data: dict[CanonicalTable, pa.Table],
    *,
    minutes: int = 0,
    run_id: str | None = None,
) -> SnapshotResult:
    return write_delta(
        LocalDestination(root),
        run_id=run_id or f"run-{minutes}",
        run_time=FIRST_RUN + timedelta(minutes=minutes),
        tables=[(table, rows.to_batches(max_chunksize=2)) for table, rows in data.items()],
    )


def _read(root: Path, table: CanonicalTable) -> pa.Table:
    """The Delta table's current rows in the canonical Arrow schema, in natural-key order."""
    data = DeltaTable(str(root / table.name)).to_pyarrow_table().cast(arrow_schema(table))
    return data.sort_by([(name, "ascending") for name in table.key])


def _history(root: Path, table: CanonicalTable) -> list[dict]:
    return sorted(DeltaTable(str(root / table.name)).history(), key=lambda c: c["version"])


def test_write_delta_first_run_creates_every_table_typed(tmp_path: Path) -> None:
    people = _rows(
        PERSON,
        [
            {"Id": "p1", "FirstSeenDateTime": SEEN, "GivenName": "Ada", "Surname": ""},
            {"Id": "p2", "GivenName": None},
        ],
    )
    data = {table: arrow_schema(table).empty_table() for table in CANONICAL_TABLES}
    data[PERSON] = people

    result = _write(tmp_path, data)

    assert result.snapshot_id == "0"
    for table in CANONICAL_TABLES:
        delta = DeltaTable(str(tmp_path / table.name))
        assert delta.version() == 0
        schema = delta.to_pyarrow_table().schema
        assert schema.names == table.column_names
        assert list(schema.types) == [_DELTA_TYPES[field.type] for field in arrow_schema(table)]
    assert _read(tmp_path, PERSON).equals(people)
    person = next(entry for entry in result.tables if entry.name == "Person")
    assert (person.rows_read, person.rows_written, person.files_written) == (2, 2, 1)
    assert person.bytes_written > 0
    (commit,) = _history(tmp_path, PERSON)
    assert commit[RUN_ID_KEY] == "run-0"
    assert DeltaTable(str(tmp_path / "Person")).transaction_version(APP_ID) == (
        transaction_version(FIRST_RUN)
    )


def test_write_delta_applies_inserts_updates_and_deletes_in_one_commit(tmp_path: Path) -> None:
    before = _rows(
        PERSON,
        [
            {"Id": "p1", "GivenName": "Ada", "LastSeenDateTime": SEEN},
            {"Id": "p2", "GivenName": "Bob"},
            {"Id": "p3", "GivenName": "Cy"},
            {"Id": "p5", "GivenName": None},
        ],
    )
    after = _rows(
        PERSON,
        [
            {"Id": "p1", "GivenName": "Ada", "LastSeenDateTime": SEEN},
            {"Id": "p2", "GivenName": None},
            {"Id": "p4", "GivenName": "Dee"},
            {"Id": "p5", "GivenName": "Eve"},
        ],
    )
    _write(tmp_path, {PERSON: before})

    result = _write(tmp_path, {PERSON: after}, minutes=1)

    assert result.snapshot_id == "1"
    assert _read(tmp_path, PERSON).equals(after)
    (person,) = result.tables
    assert (person.rows_read, person.rows_written) == (4, 4)
    assert person.files_written >= 1
    history = _history(tmp_path, PERSON)
    assert [(commit["operation"], commit[RUN_ID_KEY]) for commit in history] == [
        ("WRITE", "run-0"),
        ("MERGE", "run-1"),
    ]
    metrics = history[1]["operationMetrics"]
    assert (
        metrics["num_target_rows_inserted"],
        metrics["num_target_rows_updated"],
        metrics["num_target_rows_deleted"],
    ) == (1, 2, 1)
    changes = DeltaTable(str(tmp_path / "Person")).load_cdf(starting_version=1).read_all()
    assert sorted(
        zip(changes["Id"].to_pylist(), changes["_change_type"].to_pylist(), strict=True)
    ) == [
        ("p2", "update_postimage"),
        ("p2", "update_preimage"),
        ("p3", "delete"),
        ("p4", "insert"),
        ("p5", "update_postimage"),
        ("p5", "update_preimage"),
    ]


def test_write_delta_compares_every_type_and_a_composite_key(tmp_path: Path) -> None:
    refs = table_by_name("RefDefinition")
    sessions = table_by_name("SectionSession")
    _write(
        tmp_path,
        {
            refs: _rows(refs, [{"Id": "1", "SortOrder": 10}, {"Id": "2", "SortOrder": None}]),
            sessions: _rows(sessions, [{"Id": "s1", "IsActiveInSession": True}, {"Id": "s2"}]),
            MEMBERSHIP: _rows(
                MEMBERSHIP,
                [
                    {"GroupObjectId": "g1", "UserObjectId": "u1", "Role": "member"},
                    {"GroupObjectId": "g1", "UserObjectId": "u2", "Role": "member"},
                ],
            ),
        },
    )
    after = {
        refs: _rows(refs, [{"Id": "1", "SortOrder": 10}, {"Id": "2", "SortOrder": 20}]),
        sessions: _rows(
            sessions,
            [
                {"Id": "s1", "IsActiveInSession": False},
                {"Id": "s2", "FirstSeenDateTime": SEEN},
            ],
        ),
        MEMBERSHIP: _rows(
            MEMBERSHIP,
            [
                {"GroupObjectId": "g1", "UserObjectId": "u1", "Role": "owner"},
                {"GroupObjectId": "g2", "UserObjectId": "u2", "Role": "member"},
            ],
        ),
    }

    result = _write(tmp_path, after, minutes=1)

    assert [entry.rows_written for entry in result.tables] == [1, 2, 3]
    for table, rows in after.items():
        assert _read(tmp_path, table).equals(rows), table.name


def test_write_delta_unchanged_table_gets_a_commit_without_data(tmp_path: Path) -> None:
    people = _rows(PERSON, [{"Id": "p1", "GivenName": "Ada", "FirstSeenDateTime": SEEN}])
    _write(tmp_path, {PERSON: people})

    result = _write(tmp_path, {PERSON: people}, minutes=1)

    (person,) = result.tables
    assert (person.rows_read, person.rows_written, person.files_written) == (1, 0, 0)
    assert result.snapshot_id == "1"
    history = _history(tmp_path, PERSON)
    assert [commit[RUN_ID_KEY] for commit in history] == ["run-0", "run-1"]
    delta = DeltaTable(str(tmp_path / "Person"))
    assert delta.transaction_version(APP_ID) == transaction_version(
        FIRST_RUN + timedelta(minutes=1)
    )
    assert len(delta.file_uris()) == 1


@pytest.mark.parametrize("minutes", [0, -1])
def test_write_delta_retried_or_stale_run_commits_nothing(tmp_path: Path, minutes: int) -> None:
    people = _rows(PERSON, [{"Id": "p1", "GivenName": "Ada"}])
    _write(tmp_path, {PERSON: people})
    changed = _rows(PERSON, [{"Id": "p1", "GivenName": "Changed"}])

    result = _write(tmp_path, {PERSON: changed}, minutes=minutes, run_id="run-again")

    assert result.snapshot_id == "0"
    assert [(entry.rows_read, entry.rows_written) for entry in result.tables] == [(0, 0)]
    assert len(_history(tmp_path, PERSON)) == 1
    assert _read(tmp_path, PERSON).equals(people)


def test_write_delta_reports_each_table_when_done(tmp_path: Path) -> None:
    done: list[str] = []

    write_delta(
        LocalDestination(tmp_path),
        run_id="run-0",
        run_time=FIRST_RUN,
        tables=[(PERSON, []), (MEMBERSHIP, [])],
        on_table_done=lambda result: done.append(result.name),
    )

    assert done == ["Person", "AadGroupMembership"]


def test_write_delta_needs_a_destination_that_holds_tables() -> None:
    with pytest.raises(InvalidDestination):
        write_delta(MemoryDestination(), run_id="run-0", run_time=FIRST_RUN, tables=[])


def test_write_delta_table_with_other_columns_is_an_export_error(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "Person"), pa.table({"Id": ["p1"], "Other": [1]}))

    with pytest.raises(ExportError) as raised:
        _write(tmp_path, {PERSON: _rows(PERSON, [{"Id": "p1"}])})

    assert raised.value.target == "Person"
    assert str(tmp_path) not in raised.value.message
