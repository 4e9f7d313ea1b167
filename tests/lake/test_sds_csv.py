"""The sdsCsv writer produces the School Data Sync export byte format and layout: headerless
UTF-8 CSV with LF, ``""`` for empty strings and nothing for nulls, one part file per table
(empty tables too), then the snapshot manifest, then the current pointer; a failed write
publishes nothing and leaves the previous snapshot current."""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pytest

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name
from industrydata.errors import ExportError
from industrydata.lake import LocalDestination, MemoryDestination, TableResult, write_sds_csv
from industrydata.lake.cdm import render, schema_document

SNAPSHOT = "2026-11-27T06-00-00"
UTC = timezone.utc


class RecordingDestination(MemoryDestination):
    """A memory destination that remembers the order objects were completed in, and can be
    told to fail on paths matching a pattern."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__()
        self.completed: list[str] = []
        self.fail_on = fail_on

    @contextmanager
    def _open_writer(self, path: str) -> Iterator[BinaryIO]:
        if self.fail_on and re.search(self.fail_on, path):
            raise OSError(errno.ENOSPC, "No space left on device")
        with super()._open_writer(path) as stream:
            yield stream
        self.completed.append(path)


def _batch(table_name: str, rows: list[dict]) -> pa.RecordBatch:
    table = table_by_name(table_name)
    full = [{name: row.get(name) for name in table.column_names} for row in rows]
    return pa.RecordBatch.from_pylist(full, schema=arrow_schema(table))


def _part(destination: MemoryDestination, table_name: str) -> bytes:
    (path,) = destination.list(f"roster/{SNAPSHOT}/{table_name}")
    return destination.read_bytes(path)


def test_write_sds_csv_writes_exact_bytes() -> None:
    destination = MemoryDestination()
    seen = datetime(2021, 9, 5, 6, 16, 22, tzinfo=UTC)
    rows = [
        {
            "Id": "e1",
            "ExternalId": "sec10_st14",
            "FirstSeenDateTime": seen,
            "IsActiveInSession": True,
            "LastSeenDateTime": datetime(2021, 9, 5, 6, 16, 22, 5000, UTC),
            "PersonId": "p1",
            "RefSectionRoleId": "234",
            "SectionId": "s1",
            "SourceSystemId": "ss",
            "EntryDate": "",
            "ExitDate": "2022-05-27",
            "IsPrimaryStaffForSection": False,
        },
        {"Id": "e2", "ExternalId": 'Smith, "Jr"', "EntryDate": "line\nbreak", "ExitDate": "é"},
    ]

    write_sds_csv(
        destination,
        snapshot_id=SNAPSHOT,
        tables=[(table_by_name("Enrollment"), [_batch("Enrollment", rows)])],
    )

    assert _part(destination, "Enrollment") == (
        b"e1,sec10_st14,2021-09-05T06:16:22.000Z,true,2021-09-05T06:16:22.005Z,p1,234,s1,ss,"
        b'"",2022-05-27,false\n'
        b'e2,"Smith, ""Jr""",,,,,,,,"line\nbreak",\xc3\xa9,\n'
    )


def test_write_sds_csv_writes_int32_and_several_batches_in_order() -> None:
    destination = MemoryDestination()
    first = _batch("RefDefinition", [{"Id": "1", "Code": "Home", "SortOrder": 10}])
    second = _batch("RefDefinition", [{"Id": "2", "Code": "Work", "SortOrder": -20}, {"Id": "3"}])

    result = write_sds_csv(
        destination,
        snapshot_id=SNAPSHOT,
        tables=[(table_by_name("RefDefinition"), [first, second])],
    )

    assert _part(destination, "RefDefinition") == b"1,Home,,,,,10\n2,Work,,,,,-20\n3,,,,,,\n"
    assert result.tables == (TableResult("RefDefinition", 3, 3, 1, 37),)


def test_write_sds_csv_converts_driver_types_at_the_boundary() -> None:
    destination = MemoryDestination()
    sqlite_like = pa.record_batch(
        {
            "TenantId": ["t"],
            "Id": ["s"],
            "FirstSeenDateTime": ["2021-09-05 06:16:22.000000"],
            "LastSeenDateTime": [None],
            "Name": ["School Data Sync"],
        }
    )

    write_sds_csv(
        destination, snapshot_id=SNAPSHOT, tables=[(table_by_name("SourceSystem"), [sqlite_like])]
    )

    assert _part(destination, "SourceSystem") == b"s,2021-09-05T06:16:22.000Z,,School Data Sync\n"


def test_write_sds_csv_lays_out_a_full_snapshot(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)
    done: list[str] = []

    result = write_sds_csv(
        destination,
        snapshot_id=SNAPSHOT,
        tables=[(table, []) for table in CANONICAL_TABLES],
        on_table_done=lambda table_result: done.append(table_result.name),
    )

    files = destination.list()
    parts = [path for path in files if path.endswith(".csv")]
    assert len(parts) == 26
    assert all(
        re.fullmatch(rf"roster/{SNAPSHOT}/[A-Za-z]+/part-00000-[0-9a-f-]{{36}}-c000\.csv", path)
        for path in parts
    )
    assert {path.split("/")[2] for path in parts} == {table.name for table in CANONICAL_TABLES}
    assert all((tmp_path / path).stat().st_size == 0 for path in parts)
    assert sorted(set(files) - set(parts)) == [
        "current.manifest.cdm.json",
        f"roster/{SNAPSHOT}/snapshot.roster.manifest.cdm.json",
        "roster/current.roster.manifest.cdm.json",
        "schema/roster.v0.3.2.cdm.json",
    ]
    assert done == [table.name for table in CANONICAL_TABLES]
    assert result.snapshot_id == SNAPSHOT
    assert [table.rows_written for table in result.tables] == [0] * 26


def test_write_sds_csv_writes_tables_then_manifest_then_pointer() -> None:
    destination = RecordingDestination()
    tables = [table_by_name("Person"), table_by_name("Course")]

    write_sds_csv(destination, snapshot_id=SNAPSHOT, tables=[(table, []) for table in tables])

    assert [path.split("/")[-2] for path in destination.completed[:2]] == ["Person", "Course"]
    assert destination.completed[2:] == [
        f"roster/{SNAPSHOT}/snapshot.roster.manifest.cdm.json",
        "schema/roster.v0.3.2.cdm.json",
        "roster/current.roster.manifest.cdm.json",
        "current.manifest.cdm.json",
    ]


def test_write_sds_csv_second_snapshot_moves_the_pointer_only() -> None:
    destination = RecordingDestination()
    write_sds_csv(destination, snapshot_id="2026-11-27T06-00-00", tables=[])
    destination.completed.clear()

    write_sds_csv(destination, snapshot_id="2026-11-28T06-00-00", tables=[])

    assert destination.completed == [
        "roster/2026-11-28T06-00-00/snapshot.roster.manifest.cdm.json",
        "roster/current.roster.manifest.cdm.json",
    ]
    pointer = json.loads(destination.read_bytes("roster/current.roster.manifest.cdm.json"))
    assert pointer["subManifests"][0]["definition"] == (
        "local:/roster/2026-11-28T06-00-00/snapshot.roster.manifest.cdm.json"
    )
    assert destination.exists("roster/2026-11-27T06-00-00/snapshot.roster.manifest.cdm.json")


def test_write_sds_csv_replaces_an_outdated_schema() -> None:
    destination = MemoryDestination()
    destination.write_bytes("schema/roster.v0.3.2.cdm.json", b'{"definitions": []}')

    write_sds_csv(destination, snapshot_id=SNAPSHOT, tables=[])

    assert destination.read_bytes("schema/roster.v0.3.2.cdm.json") == render(schema_document())


@pytest.mark.parametrize("fail_on", ["/Course/", r"snapshot\.roster", "current\\.roster"])
def test_write_sds_csv_failure_keeps_previous_snapshot_current(fail_on: str) -> None:
    destination = RecordingDestination()
    write_sds_csv(destination, snapshot_id="2026-11-27T06-00-00", tables=[])
    before = dict(destination.objects)
    destination.fail_on = fail_on
    tables = [table_by_name("Person"), table_by_name("Course")]

    with pytest.raises(ExportError, match="No space left on device"):
        write_sds_csv(
            destination,
            snapshot_id="2026-11-28T06-00-00",
            tables=[(table, [_batch(table.name, [{"Id": "x"}])]) for table in tables],
        )

    assert destination.objects == before


def test_write_sds_csv_failing_batches_publish_nothing(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)

    def batches() -> Iterator[pa.RecordBatch]:
        yield _batch("Person", [{"Id": "p1"}])
        raise RuntimeError("store connection lost")

    with pytest.raises(RuntimeError):
        write_sds_csv(
            destination, snapshot_id=SNAPSHOT, tables=[(table_by_name("Person"), batches())]
        )

    assert destination.list() == []
