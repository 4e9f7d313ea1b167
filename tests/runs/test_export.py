"""Exporting a tenant's store publishes one complete snapshot in the sdsCsv layout. Loaded
with the reference SDS export's rows, the store exports files with the reference's bytes
(row order aside) and the reference's manifests."""

from __future__ import annotations

import csv
import errno
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import Engine, insert

from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import (
    CANONICAL_TABLES,
    CanonicalTable,
    ColumnType,
    table_by_name,
)
from industrydata.errors import ExportError, InvalidDestination
from industrydata.lake import LocalDestination, MemoryDestination, TableResult
from industrydata.runs.export import export_snapshot

TENANT = "9f1c7c2e-5b8e-4a0e-9d59-5f1ad1c3a001"
RUN = "0b6f3c1a-2d4e-4f5a-8b9c-7d6e5f4a3b2c"
REFERENCE_SNAPSHOT = "2021-09-05T06-16-22"
REFERENCE_TIME = datetime(2021, 9, 5, 6, 16, 22)

_PARSERS = {
    ColumnType.STRING: str,
    ColumnType.DATETIME: lambda text: datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ"),
    ColumnType.BOOLEAN: {"true": True, "false": False}.__getitem__,
    ColumnType.INT32: int,
}


def _reference_rows(part: Path, table: CanonicalTable) -> list[dict]:
    """Distinct rows of a reference part file (the reference has duplicate Enrollment rows;
    it holds no nulls and no line breaks in values, so every line is a row and every empty
    field an empty string)."""
    lines = sorted(set(part.read_bytes().decode("utf-8").splitlines()))
    return [
        {
            column.name: _PARSERS[column.type](value)
            if value != ""
            else ("" if column.type is ColumnType.STRING else None)
            for column, value in zip(table.columns, fields, strict=True)
        }
        for fields in csv.reader(lines)
    ]


def _load(engine: Engine, table: CanonicalTable, rows: list[dict], tenant: str = TENANT) -> None:
    if rows:
        with engine.begin() as connection:
            connection.execute(
                insert(sql_table(table)), [{TENANT_COLUMN: tenant, **r} for r in rows]
            )


def _part_bytes(destination_root: Path, snapshot: str, table_name: str) -> bytes:
    (part,) = (destination_root / "roster" / snapshot / table_name).glob("part-00000-*-c000.csv")
    return part.read_bytes()


@pytest.mark.reference
def test_export_snapshot_reproduces_reference_export(
    engine: Engine, store_url: str, reference_dir: Path, tmp_path: Path
) -> None:
    reference = reference_dir / "sds-lake-export-2021"
    reference_parts = {}
    for table in CANONICAL_TABLES:
        (part,) = (reference / "roster" / REFERENCE_SNAPSHOT / table.name).glob("*.csv")
        reference_parts[table.name] = part
        _load(engine, table, _reference_rows(part, table))
    root = tmp_path / "lake"

    result = export_snapshot(
        store_url,
        TENANT,
        LocalDestination(root),
        format="sdsCsv",
        run_id=RUN,
        snapshot_time=REFERENCE_TIME,
    )

    assert result.snapshot_id == REFERENCE_SNAPSHOT
    for table in CANONICAL_TABLES:
        produced = _part_bytes(root, REFERENCE_SNAPSHOT, table.name)
        expected = set(reference_parts[table.name].read_bytes().splitlines())
        assert produced == b"" or produced.endswith(b"\n"), table.name
        assert sorted(produced.splitlines()) == sorted(expected), table.name
    for manifest in [
        "schema/roster.v0.3.2.cdm.json",
        f"roster/{REFERENCE_SNAPSHOT}/snapshot.roster.manifest.cdm.json",
    ]:
        assert json.loads((root / manifest).read_bytes()) == json.loads(
            (reference / manifest).read_bytes()
        )
    root_manifest = json.loads((root / "current.manifest.cdm.json").read_bytes())
    assert root_manifest["subManifests"] == [
        json.loads((reference / "current.manifest.cdm.json").read_bytes())["subManifests"][0]
    ]


def test_export_snapshot_exports_only_the_tenant_and_reports_progress(
    engine: Engine, store_url: str
) -> None:
    person = table_by_name("Person")
    _load(engine, person, [{"Id": "mine", "GivenName": "Ada"}])
    _load(engine, person, [{"Id": "theirs", "GivenName": "Bob"}], tenant="another-tenant")
    destination = MemoryDestination()
    progress: list[tuple[TableResult, int, int]] = []

    result = export_snapshot(
        store_url,
        TENANT,
        destination,
        format="sdsCsv",
        run_id=RUN,
        snapshot_time=REFERENCE_TIME,
        on_progress=lambda *call: progress.append(call),
    )

    assert [(done, total) for _, done, total in progress] == [(n, 26) for n in range(1, 27)]
    assert [table_result for table_result, _, _ in progress] == list(result.tables)
    people = next(table for table in result.tables if table.name == "Person")
    assert (people.rows_written, people.files_written) == (1, 1)
    (part,) = destination.list(f"roster/{REFERENCE_SNAPSHOT}/Person")
    assert destination.read_bytes(part) == b"mine,,,Ada,,,,,\n"


def test_export_snapshot_same_second_moves_to_the_next(store_url: str) -> None:
    destination = MemoryDestination()

    ids = [
        export_snapshot(
            store_url,
            TENANT,
            destination,
            format="sdsCsv",
            run_id=RUN,
            snapshot_time=REFERENCE_TIME,
        ).snapshot_id
        for _ in range(2)
    ]

    assert ids == ["2021-09-05T06-16-22", "2021-09-05T06-16-23"]
    pointer = json.loads(destination.read_bytes("roster/current.roster.manifest.cdm.json"))
    assert "2021-09-05T06-16-23" in pointer["subManifests"][0]["definition"]


def test_export_snapshot_unchanged_store_gives_identical_files(
    engine: Engine, store_url: str
) -> None:
    _load(
        engine, table_by_name("Person"), [{"Id": f"p{n:04d}", "Surname": "x"} for n in range(300)]
    )
    destination = MemoryDestination()
    snapshots = [
        export_snapshot(
            store_url,
            TENANT,
            destination,
            format="sdsCsv",
            run_id=RUN,
            snapshot_time=REFERENCE_TIME,
        ).snapshot_id
        for _ in range(2)
    ]

    first, second = (
        destination.read_bytes(destination.list(f"roster/{snapshot}/Person")[0])
        for snapshot in snapshots
    )
    assert first == second
    assert first.count(b"\n") == 300


@pytest.mark.parametrize("format", ["csv", "Delta", ""])
def test_export_snapshot_unknown_format_raises(store_url: str, format: str) -> None:
    destination = MemoryDestination()

    with pytest.raises(InvalidDestination):
        export_snapshot(
            store_url,
            TENANT,
            destination,
            format=format,
            run_id=RUN,
            snapshot_time=REFERENCE_TIME,
        )

    assert destination.list() == []


class _FullDisk(MemoryDestination):
    """A destination whose part files fail on their first write, like a full disk."""

    class _Stream(io.BytesIO):
        def write(self, data) -> int:  # type: ignore[no-untyped-def]
            raise OSError(errno.ENOSPC, "No space left on device")

    @contextmanager
    def _open_writer(self, path: str) -> Iterator[BinaryIO]:
        yield self._Stream()


def test_export_snapshot_failing_mid_table_publishes_nothing(
    engine: Engine, store_url: str
) -> None:
    _load(engine, table_by_name("Course"), [{"Id": "c1"}])
    destination = _FullDisk()

    with pytest.raises(ExportError, match="No space left on device"):
        export_snapshot(
            store_url,
            TENANT,
            destination,
            format="sdsCsv",
            run_id=RUN,
            snapshot_time=REFERENCE_TIME,
        )

    assert destination.list() == []


def test_export_snapshot_cancelled_by_progress_publishes_nothing(store_url: str) -> None:
    class Cancelled(Exception):
        pass

    def cancel_at_third_table(_result: TableResult, tables_done: int, _total: int) -> None:
        if tables_done == 3:
            raise Cancelled

    destination = MemoryDestination()

    with pytest.raises(Cancelled):
        export_snapshot(
            store_url,
            TENANT,
            destination,
            format="sdsCsv",
            run_id=RUN,
            snapshot_time=REFERENCE_TIME,
            on_progress=cancel_at_third_table,
        )

    assert destination.list() == []
