"""Conformance with the reference SDS lake export: its snapshot, imported into the canonical
store and exported again, gives back every table's distinct rows with ids and timestamps as
they were: in ``sdsCsv`` as the very same text lines, under a snapshot manifest describing the
same entities, partitions and relationships (modulo the snapshot folder's name); in
``parquet`` and ``delta`` as the same typed rows read back with pyarrow and deltalake. A
snapshot we export imports back into the same store rows."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, select

from industrydata.canonical.ingest.sds_lake import load_sds_lake
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CANONICAL_TABLES, CanonicalTable, ColumnType
from industrydata.lake import LocalDestination
from industrydata.runs.export import export_snapshot
from tests.lake.delta_support import read_delta

pytestmark = pytest.mark.reference

TENANT = "0c1d2e3f-0000-4000-8000-00000000c0f0"
OTHER_TENANT = "0c1d2e3f-0000-4000-8000-00000000c0f1"
RUN_ID = "0c1d2e3f-0000-4000-8000-0000000000a1"
REFERENCE_SNAPSHOT = "2021-09-05T06-16-22"
EXPORT_TIME = datetime(2026, 11, 27, 6, 0, 0)
EXPORT_SNAPSHOT = "2026-11-27T06-00-00"
SNAPSHOT_MANIFEST = "snapshot.roster.manifest.cdm.json"

_VALUES = {
    ColumnType.STRING: str,
    ColumnType.DATETIME: lambda text: datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc
    ),
    ColumnType.BOOLEAN: {"true": True, "false": False}.__getitem__,
    ColumnType.INT32: int,
}


@pytest.fixture
def reference_snapshot(reference_dir: Path) -> Path:
    return reference_dir / "sds-lake-export-2021" / "roster" / REFERENCE_SNAPSHOT


@pytest.fixture
def loaded_store(engine: Engine, store_url: str, reference_snapshot: Path) -> str:
    """The store holding the reference snapshot for ``TENANT``; no sqlite3 connection stays
    open (the export reads it with ADBC in this process)."""
    report = load_sds_lake(engine, reference_snapshot, tenant_id=TENANT)
    assert report.problems == []
    engine.dispose()
    return store_url


def _reference_lines(snapshot: Path, table: CanonicalTable) -> set[str]:
    (part,) = (snapshot / table.name).glob("*.csv")
    return set(part.read_text(encoding="utf-8").splitlines())


def _reference_rows(snapshot: Path, table: CanonicalTable) -> Counter[tuple]:
    """The distinct reference rows as typed values. The reference holds no nulls (no
    unquoted empty field) and no line breaks in values, so an empty field is "" in a String
    column and there is no other kind of empty."""
    lines = sorted(_reference_lines(snapshot, table))
    assert not any(",," in line or line.endswith(",") for line in lines), table.name
    return Counter(
        tuple(
            _VALUES[column.type](value) if value or column.type is ColumnType.STRING else None
            for column, value in zip(table.columns, fields, strict=True)
        )
        for fields in csv.reader(lines)
    )


def _rows(data: pa.Table, table: CanonicalTable) -> Counter[tuple]:
    assert data.schema.names == table.column_names, table.name
    return Counter(tuple(row[name] for name in table.column_names) for row in data.to_pylist())


def test_sds_csv_export_holds_the_reference_rows_and_manifest(
    loaded_store: str, reference_snapshot: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lake"

    result = export_snapshot(
        loaded_store,
        TENANT,
        LocalDestination(root),
        format="sdsCsv",
        run_id=RUN_ID,
        snapshot_time=EXPORT_TIME,
    )

    assert result.snapshot_id == EXPORT_SNAPSHOT
    snapshot = root / "roster" / EXPORT_SNAPSHOT
    for table in CANONICAL_TABLES:
        (part,) = (snapshot / table.name).iterdir()
        assert part.name.startswith("part-00000-") and part.name.endswith("-c000.csv")
        lines = part.read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(set(lines)), table.name
        assert set(lines) == _reference_lines(reference_snapshot, table), table.name
    ours = (snapshot / SNAPSHOT_MANIFEST).read_text(encoding="utf-8")
    reference = json.loads((reference_snapshot / SNAPSHOT_MANIFEST).read_bytes())
    renamed = json.loads(ours.replace(EXPORT_SNAPSHOT, REFERENCE_SNAPSHOT))
    assert [entity["entityName"] for entity in renamed["entities"]] == [
        entity["entityName"] for entity in reference["entities"]
    ]
    assert [entity["dataPartitionPatterns"] for entity in renamed["entities"]] == [
        entity["dataPartitionPatterns"] for entity in reference["entities"]
    ]
    assert renamed["relationships"] == reference["relationships"]
    assert renamed == reference


def test_parquet_export_holds_the_reference_rows(
    loaded_store: str, reference_snapshot: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lake"

    export_snapshot(
        loaded_store,
        TENANT,
        LocalDestination(root),
        format="parquet",
        run_id=RUN_ID,
        snapshot_time=EXPORT_TIME,
    )

    snapshot = root / "roster" / EXPORT_SNAPSHOT
    for table in CANONICAL_TABLES:
        (part,) = (snapshot / table.name).glob("*.parquet")
        assert _rows(pq.read_table(part), table) == _reference_rows(reference_snapshot, table), (
            table.name
        )


def test_delta_export_holds_the_reference_rows(
    loaded_store: str, reference_snapshot: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lake"

    export_snapshot(
        loaded_store,
        TENANT,
        LocalDestination(root),
        format="delta",
        run_id=RUN_ID,
        snapshot_time=EXPORT_TIME,
    )

    for table in CANONICAL_TABLES:
        data = read_delta(str(root / table.name), table)
        assert _rows(data, table) == _reference_rows(reference_snapshot, table), table.name


def test_sds_csv_export_imports_back_into_the_same_rows(
    engine: Engine, loaded_store: str, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    export_snapshot(
        loaded_store,
        TENANT,
        LocalDestination(root),
        format="sdsCsv",
        run_id=RUN_ID,
        snapshot_time=EXPORT_TIME,
    )

    report = load_sds_lake(engine, root / "roster" / EXPORT_SNAPSHOT, tenant_id=OTHER_TENANT)

    assert report.problems == []
    with engine.connect() as connection:
        for table in CANONICAL_TABLES:
            sql = sql_table(table)
            columns = [sql.c[name] for name in table.column_names]
            tenants = [
                set(connection.execute(select(*columns).where(sql.c[TENANT_COLUMN] == tenant)))
                for tenant in (TENANT, OTHER_TENANT)
            ]
            assert tenants[0] == tenants[1], table.name
