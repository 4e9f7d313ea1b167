"""The parquet writer lays out snapshots like sdsCsv, with one typed, zstd-compressed Parquet
file per table (empty tables too) that reads back as exactly the rows written, in the
table's Arrow schema; the manifest points readers at ``.parquet`` files and names the format;
a failed write publishes nothing."""

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
import pyarrow.parquet as pq
import pytest

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name
from industrydata.errors import ExportError
from industrydata.lake import LocalDestination, MemoryDestination, write_parquet

SNAPSHOT = "2026-11-27T06-00-00"
UTC = timezone.utc


def _batch(table_name: str, rows: list[dict]) -> pa.RecordBatch:
    table = table_by_name(table_name)
    full = [{name: row.get(name) for name in table.column_names} for row in rows]
    return pa.RecordBatch.from_pylist(full, schema=arrow_schema(table))


def _part(destination: MemoryDestination, table_name: str) -> pa.Table:
    (path,) = destination.list(f"roster/{SNAPSHOT}/{table_name}")
    return pq.read_table(pa.BufferReader(destination.read_bytes(path)))


def test_write_parquet_reads_back_typed_rows_with_nulls() -> None:
    destination = MemoryDestination()
    seen = datetime(2021, 9, 5, 6, 16, 22, 5000, UTC)
    rows = [
        {
            "Id": "e1",
            "ExternalId": "",
            "FirstSeenDateTime": seen,
            "IsActiveInSession": True,
            "EntryDate": "2021-09-05",
            "IsPrimaryStaffForSection": False,
        },
        {"Id": "e2", "ExternalId": 'Smith, "Jr"\nline', "IsActiveInSession": None},
    ]
    first = _batch("Enrollment", rows[:1])
    second = _batch("Enrollment", rows[1:])

    result = write_parquet(
        destination,
        snapshot_id=SNAPSHOT,
        tables=[(table_by_name("Enrollment"), [first, second])],
    )

    data = _part(destination, "Enrollment")
    assert data.schema == arrow_schema(table_by_name("Enrollment"))
    assert data.equals(pa.Table.from_batches([first, second]))
    assert data.column("FirstSeenDateTime")[0].as_py() == seen
    assert data.column("LastSeenDateTime").null_count == 2
    assert data.column("ExternalId").to_pylist() == ["", 'Smith, "Jr"\nline']
    (table_result,) = result.tables
    assert (table_result.rows_read, table_result.rows_written, table_result.files_written) == (
        2,
        2,
        1,
    )
    (path,) = destination.list(f"roster/{SNAPSHOT}/Enrollment")
    assert table_result.bytes_written == len(destination.read_bytes(path))


def test_write_parquet_writes_int32_and_zstd() -> None:
    destination = MemoryDestination()
    batch = _batch("RefDefinition", [{"Id": "1", "Code": "Home", "SortOrder": 10}, {"Id": "2"}])

    write_parquet(
        destination, snapshot_id=SNAPSHOT, tables=[(table_by_name("RefDefinition"), [batch])]
    )

    (path,) = destination.list(f"roster/{SNAPSHOT}/RefDefinition")
    metadata = pq.ParquetFile(pa.BufferReader(destination.read_bytes(path))).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    sort_order = _part(destination, "RefDefinition").column("SortOrder")
    assert sort_order.type == pa.int32()
    assert sort_order.to_pylist() == [10, None]


def test_write_parquet_converts_driver_types_at_the_boundary() -> None:
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

    write_parquet(
        destination, snapshot_id=SNAPSHOT, tables=[(table_by_name("SourceSystem"), [sqlite_like])]
    )

    assert _part(destination, "SourceSystem").to_pylist() == [
        {
            "Id": "s",
            "FirstSeenDateTime": datetime(2021, 9, 5, 6, 16, 22, tzinfo=UTC),
            "LastSeenDateTime": None,
            "Name": "School Data Sync",
        }
    ]


def test_write_parquet_lays_out_a_full_snapshot_with_a_parquet_manifest(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)

    write_parquet(
        destination, snapshot_id=SNAPSHOT, tables=[(table, []) for table in CANONICAL_TABLES]
    )

    files = destination.list()
    parts = [path for path in files if path.endswith(".parquet")]
    assert len(parts) == 26
    assert all(
        re.fullmatch(
            rf"roster/{SNAPSHOT}/[A-Za-z]+/part-00000-[0-9a-f-]{{36}}-c000\.zstd\.parquet", path
        )
        for path in parts
    )
    for path in parts:
        table = table_by_name(path.split("/")[2])
        empty = pq.read_table(tmp_path / path)
        assert (empty.num_rows, empty.schema) == (0, arrow_schema(table))
    assert sorted(set(files) - set(parts)) == [
        "current.manifest.cdm.json",
        f"roster/{SNAPSHOT}/snapshot.roster.manifest.cdm.json",
        "roster/current.roster.manifest.cdm.json",
        "schema/roster.v0.3.2.cdm.json",
    ]
    manifest = json.loads(
        destination.read_bytes(f"roster/{SNAPSHOT}/snapshot.roster.manifest.cdm.json")
    )
    for entity in manifest["entities"]:
        (pattern,) = entity["dataPartitionPatterns"]
        assert pattern["exhibitsTraits"] == [{"traitReference": "is.partition.format.parquet"}]
        (part,) = destination.list(f"roster/{SNAPSHOT}/{entity['entityName']}")
        assert pattern["rootLocation"] == f"local:/roster/{SNAPSHOT}/{entity['entityName']}"
        assert re.search(pattern["regularExpression"], "/" + part.rsplit("/", 1)[1])
    assert len(manifest["relationships"]) == 28


class _FullDisk(MemoryDestination):
    """A destination that cannot store the Course part file, like a full disk."""

    @contextmanager
    def _open_writer(self, path: str) -> Iterator[BinaryIO]:
        if "/Course/" in path:
            raise OSError(errno.ENOSPC, "No space left on device")
        with super()._open_writer(path) as stream:
            yield stream


def test_write_parquet_failure_keeps_previous_snapshot_current() -> None:
    destination = _FullDisk()
    write_parquet(destination, snapshot_id="2026-11-27T06-00-00", tables=[])
    before = dict(destination.objects)
    tables = [table_by_name("Person"), table_by_name("Course")]

    with pytest.raises(ExportError, match="No space left on device"):
        write_parquet(
            destination,
            snapshot_id="2026-11-28T06-00-00",
            tables=[(table, [_batch(table.name, [{"Id": "x"}])]) for table in tables],
        )

    assert destination.objects == before
