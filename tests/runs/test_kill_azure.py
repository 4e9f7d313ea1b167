"""A run killed mid-export on Azure (SIGKILL of the export child process), in either folder
layout (``sdsCsv``, ``parquet``), leaves the previous snapshot current, intact and readable,
and the current manifest never names the killed run's folder; the next run publishes its own
snapshot and sweeps the killed run's debris."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.errors import ExportError
from industrydata.lake.layout import CURRENT_ROSTER_MANIFEST, SNAPSHOT_MANIFEST_NAME
from industrydata.runs.export_process import ExportJob, run_export_process
from tests.conftest import Azurite

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

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
        allowed_http_endpoints=(azurite.origin,),
    )
    return run_export_process(
        job, on_progress=on_progress or (lambda *_: True), on_heartbeat=lambda: True
    )


def _kill_child_after(tables: int):  # type: ignore[no-untyped-def]
    """An ``on_progress`` that SIGKILLs the export child once ``tables`` tables are written."""

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
    assert len(debris) == tables_before_kill
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
