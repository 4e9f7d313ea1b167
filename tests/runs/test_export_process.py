"""Exports run in a child process: progress comes back over a pipe, the child writes on while
the parent records it and publishes only on the parent's word, the parent can stop the child
at any table, and a child that dies is a failed export, never a hang."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.canonical.reader import DRIVER_MODULES
from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.errors import DestinationUnreachable, ExportError, InvalidDestination
from industrydata.runs.export_process import (
    ExportJob,
    ExportStopped,
    run_export_process,
    start_export_server,
)
from tests.factories import wait_for

TENANT = "4b1e2c3d-5f6a-4b7c-8d9e-0f1a2b3c4d5e"


@pytest.fixture
def loaded_store(engine, store_url: str, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    generate_sds_csv(tmp_path / "drop", students=40, seed=5)
    load_sds_csv(engine, tmp_path / "drop", tenant_id=TENANT)
    return store_url


def _job(store_url: str, root: Path, folder: str = "lake", **overrides: object) -> ExportJob:
    values: dict = {
        "store_url": store_url,
        "tenant_id": TENANT,
        "run_id": "5d0c1f4e-8a2b-4c3d-9e1f-0a1b2c3d4e5f",
        "destination_url": (root / folder).as_uri(),
        "format": "sdsCsv",
        "credential": None,
        "snapshot_time": datetime(2026, 11, 27, 6, 0, 0),
        "allowed_local_roots": (root,),
        "allowed_storage_endpoints": (),
    }
    values.update(overrides)
    return ExportJob(**values)


def test_run_export_process_writes_and_reports_every_table(
    loaded_store: str, tmp_path: Path
) -> None:
    seen: list[tuple[str, int, int]] = []

    snapshot_id = run_export_process(
        _job(loaded_store, tmp_path),
        on_progress=lambda result, done, total: seen.append((result.name, done, total)) is None,
        on_heartbeat=lambda: True,
    )

    assert snapshot_id == "2026-11-27T06-00-00"
    assert [done for _, done, _ in seen] == list(range(1, 27))
    assert (
        tmp_path / "lake" / "roster" / snapshot_id / "snapshot.roster.manifest.cdm.json"
    ).is_file()


def test_the_child_writes_on_while_the_parent_records_and_publishes_on_its_word(
    loaded_store: str, tmp_path: Path
) -> None:
    snapshot = tmp_path / "lake" / "roster" / "2026-11-27T06-00-00"
    manifest = snapshot / "snapshot.roster.manifest.cdm.json"
    last_table = snapshot / CANONICAL_TABLES[-1].name
    seen_before_the_word: list[bool] = []

    def on_progress(_result: object, done: int, total: int) -> bool:
        if done == 1:  # a slow progress write: the child does not wait for it
            wait_for(last_table.exists, timeout=30, interval=0.01)
        if done == total:  # the child waits for this answer before it publishes
            threading.Event().wait(0.3)
            seen_before_the_word.append(manifest.exists())
        return True

    run_export_process(
        _job(loaded_store, tmp_path), on_progress=on_progress, on_heartbeat=lambda: True
    )

    assert seen_before_the_word == [False]
    assert manifest.is_file()


def test_run_export_process_stopped_by_progress_publishes_nothing(
    loaded_store: str, tmp_path: Path
) -> None:
    with pytest.raises(ExportStopped):
        run_export_process(
            _job(loaded_store, tmp_path),
            on_progress=lambda result, done, total: done < 3,
            on_heartbeat=lambda: True,
        )

    assert not (tmp_path / "lake" / "roster" / "current.roster.manifest.cdm.json").exists()


def test_run_export_process_stops_when_service_stops(loaded_store: str, tmp_path: Path) -> None:
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(ExportStopped, match="stopping"):
        run_export_process(
            _job(loaded_store, tmp_path),
            on_progress=lambda *_: True,
            on_heartbeat=lambda: True,
            should_stop=stopping,
        )
    assert multiprocessing.active_children() == []


def test_run_export_process_child_killed_is_export_error(loaded_store: str, tmp_path: Path) -> None:
    def kill_child(*_: object) -> bool:
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)
        return True

    with pytest.raises(ExportError, match="ended unexpectedly"):
        run_export_process(
            _job(loaded_store, tmp_path), on_progress=kill_child, on_heartbeat=lambda: True
        )

    assert not (tmp_path / "lake" / "roster" / "current.roster.manifest.cdm.json").exists()


def test_run_export_process_passes_the_childs_domain_error(
    loaded_store: str, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")

    with pytest.raises(DestinationUnreachable):
        run_export_process(
            _job(loaded_store, tmp_path, folder="blocker/lake"),
            on_progress=lambda *_: True,
            on_heartbeat=lambda: True,
        )
    with pytest.raises(InvalidDestination):
        run_export_process(
            _job(loaded_store, tmp_path, allowed_local_roots=(tmp_path / "elsewhere",)),
            on_progress=lambda *_: True,
            on_heartbeat=lambda: True,
        )


def test_export_job_repr_hides_the_credential(tmp_path: Path) -> None:
    job = _job("sqlite://", tmp_path, credential={"accountKey": "very-secret-key"})
    assert "very-secret-key" not in repr(job)


def _drivers_loaded(answer: multiprocessing.connection.Connection) -> None:
    answer.send([name for name in DRIVER_MODULES if name in sys.modules])


def test_export_children_start_with_the_store_drivers_loaded_by_the_export_server() -> None:
    """An export child forked from the server finds the drivers loaded (importing them took
    each run about 0.4 s of CPU)."""
    assert start_export_server().wait(timeout=60)
    receiver, sender = multiprocessing.get_context("forkserver").Pipe(duplex=False)
    child = multiprocessing.get_context("forkserver").Process(
        target=_drivers_loaded, args=(sender,)
    )
    child.start()
    sender.close()
    loaded = receiver.recv()
    child.join()

    assert loaded == list(DRIVER_MODULES)
