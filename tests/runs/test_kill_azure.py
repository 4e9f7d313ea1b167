"""A run killed mid-export on Azure (SIGKILL of the export child process), in either folder
layout (``sdsCsv``, ``parquet``), leaves the previous snapshot current, intact and readable,
and the current manifest never names the killed run's folder; the next run publishes its own
snapshot and sweeps the killed run's debris. In ``delta``, every table stays whole at its
version before or after the killed run, and the next run brings all of them up to date."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import uuid
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from azure.storage.blob import ContainerClient
from deltalake import DeltaTable
from sqlalchemy import Engine, update

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.canonical.reader import read_table
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CANONICAL_TABLES, CanonicalTable, table_by_name
from industrydata.errors import ExportError
from industrydata.lake import open_destination, parse_destination
from industrydata.lake.layout import CURRENT_ROSTER_MANIFEST, SNAPSHOT_MANIFEST_NAME
from industrydata.runs.export_process import ExportJob, run_export_process
from tests.conftest import SQLITE_ONLY, Azurite
from tests.lake.delta_support import read_delta

# SQLite only, as tests/runs/test_kill_formats.py: what a killed run leaves behind depends on
# the destination, not on the store the run reads (tests/runs/test_export_process.py kills a
# child reading each store; tests/api/test_delta_options.py updates a PostgreSQL store's
# rows and brings a Delta lake up to date from them).
pytestmark = [
    pytest.mark.azurite,
    pytest.mark.slow,
    pytest.mark.parametrize("store_url", SQLITE_ONLY, indirect=True),
]

TENANT = "6d2f3a4b-7c8d-4e9f-a0b1-c2d3e4f5a6b7"
PREFIX = "lake"


@pytest.fixture
def loaded_store(engine, store_url: str, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    generate_sds_csv(tmp_path / "drop", students=40, seed=11)
    load_sds_csv(engine, tmp_path / "drop", tenant_id=TENANT)
    return store_url


def _export(  # type: ignore[no-untyped-def]
    store_url: str, azurite: Azurite, container: str, format: str, hour: int, on_progress=None
) -> str:
    job = ExportJob(
        store_url=store_url,
        tenant_id=TENANT,
        run_id=str(uuid.uuid4()),
        destination_url=f"az://{container}/{PREFIX}",
        format=format,
        credential={"connectionString": azurite.connection_string},
        snapshot_time=datetime(2026, 11, 27, hour, 0, 0),
        allowed_local_roots=(),
        allowed_storage_endpoints=(azurite.origin,),
    )
    return run_export_process(
        job, on_progress=on_progress or (lambda *_: True), on_heartbeat=lambda: True
    )


def _kill_child_after(tables: int):  # type: ignore[no-untyped-def]
    """An ``on_progress`` that SIGKILLs the export child once ``tables`` tables are written;
    the child may have written more by then, as it does not wait for the parent between
    tables (only before it publishes)."""

    def on_progress(_result: object, done: int, _total: int) -> bool:
        if done == tables:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
        return True

    return on_progress


def _contents(container: ContainerClient, folder: str) -> dict[str, bytes]:
    prefix = f"{PREFIX}/{folder}/"
    return {
        blob.name: container.download_blob(blob.name).readall()
        for blob in container.list_blobs(name_starts_with=prefix)
    }


def _current_snapshot_manifest(container: ContainerClient) -> str:
    document = json.loads(container.download_blob(f"{PREFIX}/{CURRENT_ROSTER_MANIFEST}").readall())
    return document["subManifests"][0]["definition"]


@pytest.mark.parametrize("tables_before_kill", [1, len(CANONICAL_TABLES)])
@pytest.mark.parametrize("format", ["sdsCsv", "parquet"])
def test_killed_export_keeps_previous_snapshot_and_next_run_sweeps(
    loaded_store: str, azurite: Azurite, azure_container: str, format: str, tables_before_kill: int
) -> None:
    container = ContainerClient.from_connection_string(azurite.connection_string, azure_container)
    previous = _export(loaded_store, azurite, azure_container, format, hour=6)
    previous_files = _contents(container, f"roster/{previous}")

    with pytest.raises(ExportError, match="ended unexpectedly"):
        _export(
            loaded_store,
            azurite,
            azure_container,
            format,
            hour=7,
            on_progress=_kill_child_after(tables_before_kill),
        )

    killed = "2026-11-27T07-00-00"
    debris = _contents(container, f"roster/{killed}")
    assert tables_before_kill <= len(debris) <= len(CANONICAL_TABLES)
    written = sorted(name.split("/")[3] for name in debris)
    assert written == sorted(table.name for table in CANONICAL_TABLES[: len(debris)])
    assert not any(name.endswith(SNAPSHOT_MANIFEST_NAME) for name in debris)
    assert _current_snapshot_manifest(container) == (
        f"local:/roster/{previous}/{SNAPSHOT_MANIFEST_NAME}"
    )
    assert _contents(container, f"roster/{previous}") == previous_files

    following = _export(loaded_store, azurite, azure_container, format, hour=8)

    assert _current_snapshot_manifest(container) == (
        f"local:/roster/{following}/{SNAPSHOT_MANIFEST_NAME}"
    )
    assert _contents(container, f"roster/{killed}") == {}
    assert _contents(container, f"roster/{previous}") == previous_files
    assert len(_contents(container, f"roster/{following}")) == len(CANONICAL_TABLES) + 1


@pytest.mark.parametrize("tables_before_kill", [1, 12])
def test_killed_delta_export_leaves_every_table_whole_and_next_run_catches_up(
    loaded_store: str,
    engine: Engine,
    azurite: Azurite,
    azure_container: str,
    tables_before_kill: int,
) -> None:
    _export(loaded_store, azurite, azure_container, "delta", hour=6)
    before = {table.name: _store_rows(loaded_store, table) for table in CANONICAL_TABLES}
    person = sql_table(table_by_name("Person"))
    with engine.begin() as connection:
        connection.execute(
            update(person)
            .where(person.c[TENANT_COLUMN] == TENANT)
            .values(GivenName=person.c.GivenName + "*")
        )
    after = {table.name: _store_rows(loaded_store, table) for table in CANONICAL_TABLES}
    destination = open_destination(
        parse_destination(
            f"az://{azure_container}/{PREFIX}",
            format="delta",
            credential={"connectionString": azurite.connection_string},
        ),
        allowed_local_roots=[],
        allowed_storage_endpoints=[azurite.origin],
    )
    root, storage = destination.delta_location()

    with pytest.raises(ExportError, match="ended unexpectedly"):
        _export(
            loaded_store,
            azurite,
            azure_container,
            "delta",
            hour=7,
            on_progress=_kill_child_after(tables_before_kill),
        )

    for table in CANONICAL_TABLES:
        version = DeltaTable(f"{root}/{table.name}", storage_options=storage).version()
        expected = {0: before, 1: after}[version][table.name]
        assert read_delta(f"{root}/{table.name}", table, **storage).equals(expected), table.name

    _export(loaded_store, azurite, azure_container, "delta", hour=8)

    for table in CANONICAL_TABLES:
        current = read_delta(f"{root}/{table.name}", table, **storage)
        assert current.equals(after[table.name]), table.name


def _store_rows(store_url: str, table: CanonicalTable) -> pa.Table:
    data = pa.Table.from_batches(list(read_table(store_url, table, TENANT)), arrow_schema(table))
    return data.sort_by([(name, "ascending") for name in table.key])
