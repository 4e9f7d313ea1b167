"""Publishing a snapshot folder (sdsCsv and parquet alike) sweeps what interrupted runs left:
older folders that no pointer ever named and temporary files of interrupted writes. A folder
that was once published is never removed, and neither is one newer than the new snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from industrydata.canonical.tables import table_by_name
from industrydata.lake import LocalDestination, write_parquet, write_sds_csv

FIRST, KILLED, SECOND, LATER = (
    "2026-11-27T06-00-00",
    "2026-11-27T07-00-00",
    "2026-11-27T08-00-00",
    "2026-11-27T09-00-00",
)
WRITERS = [write_sds_csv, write_parquet]


def _publish(writer, root: Path, snapshot_id: str) -> None:  # type: ignore[no-untyped-def]
    writer(
        LocalDestination(root),
        snapshot_id=snapshot_id,
        tables=[(table_by_name("Person"), [])],
    )


def _plant(root: Path, path: str, data: bytes = b"left by a killed run") -> Path:
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
    return file


def _snapshot_folders(root: Path) -> list[str]:
    return sorted(path.name for path in (root / "roster").iterdir() if path.is_dir())


def _current(root: Path) -> str:
    pointer = json.loads((root / "roster" / "current.roster.manifest.cdm.json").read_bytes())
    return pointer["subManifests"][0]["definition"]


@pytest.mark.parametrize("writer", WRITERS)
def test_publish_sweeps_an_unpublished_folder_and_temporary_files(writer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _publish(writer, tmp_path, FIRST)
    _plant(tmp_path, f"roster/{KILLED}/Person/part-00000-x-c000.csv")
    _plant(tmp_path, f"roster/{KILLED}/Person/.tmp-part-00000-y-c000.csv-0123")
    leftovers = [
        _plant(tmp_path, "roster/.tmp-current.roster.manifest.cdm.json-0123"),
        _plant(tmp_path, ".tmp-current.manifest.cdm.json-4567"),
        _plant(tmp_path, "schema/.tmp-roster.v0.3.2.cdm.json-89ab"),
    ]

    _publish(writer, tmp_path, SECOND)

    assert _snapshot_folders(tmp_path) == [FIRST, SECOND]
    assert not any(leftover.exists() for leftover in leftovers)
    assert (tmp_path / "roster" / FIRST / "snapshot.roster.manifest.cdm.json").is_file()
    assert SECOND in _current(tmp_path)


@pytest.mark.parametrize("writer", WRITERS)
def test_publish_sweeps_a_folder_killed_between_its_manifest_and_the_pointer(
    writer,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    _publish(writer, tmp_path, FIRST)
    _plant(tmp_path, f"roster/{KILLED}/Person/part-00000-x-c000.csv")
    _plant(tmp_path, f"roster/{KILLED}/snapshot.roster.manifest.cdm.json", b"{}")

    _publish(writer, tmp_path, SECOND)

    assert _snapshot_folders(tmp_path) == [FIRST, SECOND]


def test_publish_never_removes_a_published_snapshot(tmp_path: Path) -> None:
    for snapshot_id in (FIRST, KILLED, SECOND):
        _publish(write_sds_csv, tmp_path, snapshot_id)

    assert _snapshot_folders(tmp_path) == [FIRST, KILLED, SECOND]
    assert all(
        (tmp_path / "roster" / name / "snapshot.roster.manifest.cdm.json").is_file()
        for name in (FIRST, KILLED, SECOND)
    )


def test_publish_keeps_a_folder_newer_than_the_new_snapshot(tmp_path: Path) -> None:
    _publish(write_sds_csv, tmp_path, FIRST)
    newer = _plant(tmp_path, f"roster/{LATER}/Person/part-00000-x-c000.csv")

    _publish(write_sds_csv, tmp_path, SECOND)

    assert newer.is_file()
    assert _snapshot_folders(tmp_path) == [FIRST, SECOND, LATER]


def test_publish_first_snapshot_keeps_folders_it_cannot_tell_were_published(
    tmp_path: Path,
) -> None:
    _plant(tmp_path, f"roster/{FIRST}/snapshot.roster.manifest.cdm.json", b"{}")
    _plant(tmp_path, f"roster/{KILLED}/Person/part-00000-x-c000.csv")

    _publish(write_sds_csv, tmp_path, SECOND)

    assert _snapshot_folders(tmp_path) == [FIRST, SECOND]
