"""A run killed mid-export (SIGKILL of the export child process) on a local destination, in
every format, leaves the previous snapshot intact and readable: for ``sdsCsv`` and
``parquet`` the previous snapshot's files and the current pointer are untouched and no
manifest names the killed run's folder; for ``delta`` every table is whole, at its previous
version or at the killed run's commit. The next run succeeds, sweeps the killed run's folder
and temporary files, and leaves the destination equal to the store."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from sqlalchemy import Engine, delete, insert, select, update

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.canonical.reader import read_table
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CANONICAL_TABLES, CanonicalTable, table_by_name
from industrydata.errors import ExportError
from industrydata.lake.delta import RUN_ID_KEY
from industrydata.runs.export_process import ExportJob, run_export_process
from tests.conftest import SQLITE_ONLY
from tests.lake.delta_support import read_delta

# SQLite only: what a killed run leaves behind depends on the destination, not on the store
# the run reads (tests/runs/test_export_process.py kills a child reading each store).
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("store_url", SQLITE_ONLY, indirect=True)]

TENANT = "7e3a4b5c-6d7e-4f8a-9b0c-1d2e3f4a5b6c"
SNAPSHOT_MANIFEST = "snapshot.roster.manifest.cdm.json"
POINTER = "roster/current.roster.manifest.cdm.json"
FIRST, KILLED, NEXT = (f"2026-11-27T0{hour}-00-00" for hour in (6, 7, 8))
Progress = Callable[[object, int, int], bool]


@pytest.fixture
def loaded_store(engine: Engine, store_url: str, tmp_path: Path) -> str:
    generate_sds_csv(tmp_path / "drop", students=40, seed=7)
    load_sds_csv(engine, tmp_path / "drop", tenant_id=TENANT)
    return store_url


def _export(store_url: str, root: Path, format: str, hour: int, on_progress: Progress) -> str:
    job = ExportJob(
        store_url=store_url,
        tenant_id=TENANT,
        run_id=f"run-{hour}",
        destination_url=(root / "lake").as_uri(),
        format=format,
        credential=None,
        snapshot_time=datetime(2026, 11, 27, hour, 0, 0),
        allowed_local_roots=(root,),
        allowed_storage_endpoints=(),
    )
    return run_export_process(job, on_progress=on_progress, on_heartbeat=lambda: True)


def _go_on(*_: object) -> bool:
    return True


def _kill_children() -> None:
    for child in multiprocessing.active_children():
        os.kill(child.pid, signal.SIGKILL)


def _kill_while_writing(_result: object, done: int, _total: int) -> bool:
    """Let the child go on after the first table and kill it while it writes the next."""
    if done == 1:
        threading.Timer(0.0, _kill_children).start()
    return True


def _kill_before_publishing(_result: object, done: int, total: int) -> bool:
    """Kill the child once every table is written, before it writes any manifest or commit
    that follows."""
    if done == total:
        _kill_children()
    return True


KILLS = [
    pytest.param(_kill_while_writing, id="while-writing"),
    pytest.param(_kill_before_publishing, id="after-the-last-table"),
]


def _change_store(engine: Engine) -> None:
    """Insert, update and delete rows, so the killed run has something new to write."""
    person = sql_table(table_by_name("Person"))
    enrollment = sql_table(table_by_name("Enrollment"))
    with engine.begin() as connection:
        connection.execute(
            update(person)
            .where(person.c[TENANT_COLUMN] == TENANT)
            .values(GivenName=person.c.GivenName + "*", MiddleName=None)
        )
        victim = connection.execute(
            select(enrollment.c.Id).where(enrollment.c[TENANT_COLUMN] == TENANT).limit(1)
        ).scalar_one()
        connection.execute(delete(enrollment).where(enrollment.c.Id == victim))
        connection.execute(insert(person).values({TENANT_COLUMN: TENANT, "Id": "new-person"}))


def _store_rows(store_url: str, table: CanonicalTable) -> pa.Table:
    data = pa.Table.from_batches(list(read_table(store_url, table, TENANT)), arrow_schema(table))
    return _sorted(data, table)


def _sorted(data: pa.Table, table: CanonicalTable) -> pa.Table:
    return data.sort_by([(name, "ascending") for name in table.key])


def _files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def _pointer(lake: Path) -> str:
    document = json.loads((lake / POINTER).read_bytes())
    return document["subManifests"][0]["definition"]


@pytest.mark.parametrize("format", ["sdsCsv", "parquet"])
@pytest.mark.parametrize("kill", KILLS)
def test_killed_snapshot_export_keeps_previous_snapshot_and_next_run_sweeps(
    loaded_store: str, engine: Engine, tmp_path: Path, format: str, kill: Progress
) -> None:
    lake = tmp_path / "lake"
    assert _export(loaded_store, tmp_path, format, 6, _go_on) == FIRST
    published = _files(lake)
    _change_store(engine)

    with pytest.raises(ExportError, match="ended unexpectedly"):
        _export(loaded_store, tmp_path, format, 7, kill)

    assert {path: data for path, data in _files(lake).items() if KILLED not in path} == published
    assert _pointer(lake) == f"local:/roster/{FIRST}/{SNAPSHOT_MANIFEST}"
    assert not (lake / "roster" / KILLED / SNAPSHOT_MANIFEST).exists()
    if format == "parquet":
        for part in (lake / "roster" / FIRST).rglob("*.parquet"):
            assert pq.read_table(part).schema == arrow_schema(table_by_name(part.parent.name))

    assert _export(loaded_store, tmp_path, format, 8, _go_on) == NEXT

    assert _pointer(lake) == f"local:/roster/{NEXT}/{SNAPSHOT_MANIFEST}"
    assert sorted(path.name for path in (lake / "roster").iterdir() if path.is_dir()) == [
        FIRST,
        NEXT,
    ]
    assert not [path for path in lake.rglob(".tmp-*")]
    assert {path: data for path, data in _files(lake).items() if FIRST in path} == {
        path: data for path, data in published.items() if FIRST in path
    }
    for table in CANONICAL_TABLES:
        (part,) = (lake / "roster" / NEXT / table.name).iterdir()
        expected = _store_rows(loaded_store, table)
        if format == "parquet":
            assert _sorted(pq.read_table(part), table).equals(expected), table.name
        else:
            assert part.read_bytes().count(b"\n") == expected.num_rows, table.name


@pytest.mark.parametrize("kill", KILLS)
def test_killed_delta_export_leaves_every_table_whole_and_next_run_catches_up(
    loaded_store: str, engine: Engine, tmp_path: Path, kill: Progress
) -> None:
    lake = tmp_path / "lake"
    assert _export(loaded_store, tmp_path, "delta", 6, _go_on) == "0"
    before = {table.name: _store_rows(loaded_store, table) for table in CANONICAL_TABLES}
    _change_store(engine)
    after = {table.name: _store_rows(loaded_store, table) for table in CANONICAL_TABLES}

    with pytest.raises(ExportError, match="ended unexpectedly"):
        _export(loaded_store, tmp_path, "delta", 7, kill)

    versions = []
    for table in CANONICAL_TABLES:
        delta = DeltaTable(str(lake / table.name))
        versions.append(delta.version())
        expected = {0: before, 1: after}[delta.version()][table.name]
        current = _sorted(read_delta(str(lake / table.name), table), table)
        assert current.equals(expected), table.name
    assert not before["Person"].equals(after["Person"])
    assert versions == sorted(versions, reverse=True), "tables are committed in order"
    killed_commits = {
        table.name for table, version in zip(CANONICAL_TABLES, versions, strict=True) if version
    }

    assert _export(loaded_store, tmp_path, "delta", 8, _go_on) == str(max(versions) + 1)

    for table in CANONICAL_TABLES:
        delta = DeltaTable(str(lake / table.name))
        current = _sorted(read_delta(str(lake / table.name), table), table)
        assert current.equals(after[table.name]), table.name
        runs = [commit[RUN_ID_KEY] for commit in sorted(delta.history(), key=_version)]
        assert runs == (
            ["run-6", "run-7", "run-8"] if table.name in killed_commits else ["run-6", "run-8"]
        ), table.name


def _version(commit: dict) -> int:
    return commit["version"]
