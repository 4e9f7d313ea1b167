"""Snapshots are named by their UTC second, ``yyyy-MM-ddTHH-mm-ss``; a name already in use
at the destination moves one second later, so ids stay unique and in taking order."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from industrydata.lake import MemoryDestination, free_snapshot_id, snapshot_id
from industrydata.lake.layout import part_file, snapshot_folder, snapshot_manifest


def test_snapshot_id_naive_time_is_utc() -> None:
    assert snapshot_id(datetime(2021, 9, 5, 6, 16, 22, 999999)) == "2021-09-05T06-16-22"


def test_snapshot_id_aware_time_is_converted_to_utc() -> None:
    paris_summer = timezone(timedelta(hours=2))

    assert snapshot_id(datetime(2021, 9, 5, 8, 16, 22, tzinfo=paris_summer)) == (
        "2021-09-05T06-16-22"
    )


def test_free_snapshot_id_unused_second_is_kept() -> None:
    destination = MemoryDestination()
    destination.write_bytes("roster/2021-09-05T06-16-21/Person/part.csv", b"")

    assert free_snapshot_id(destination, datetime(2021, 9, 5, 6, 16, 22)) == ("2021-09-05T06-16-22")


def test_free_snapshot_id_used_seconds_move_later() -> None:
    destination = MemoryDestination()
    destination.write_bytes("roster/2021-09-05T06-16-22/snapshot.roster.manifest.cdm.json", b"")
    destination.write_bytes("roster/2021-09-05T06-16-23/Person/part.csv", b"")

    assert free_snapshot_id(destination, datetime(2021, 9, 5, 6, 16, 22)) == ("2021-09-05T06-16-24")


def test_part_file_names_are_spark_style_and_unique() -> None:
    first, second = (part_file("2021-09-05T06-16-22", "Person") for _ in range(2))

    assert re.fullmatch(
        r"roster/2021-09-05T06-16-22/Person/part-00000-[0-9a-f-]{36}-c000\.csv", first
    )
    assert first != second


def test_snapshot_manifest_path() -> None:
    assert snapshot_manifest("2021-09-05T06-16-22") == (
        "roster/2021-09-05T06-16-22/snapshot.roster.manifest.cdm.json"
    )


@pytest.mark.parametrize("bad", ["2021-09-05", "../x", "2021-09-05T06:16:22", ""])
def test_snapshot_folder_bad_id_raises(bad: str) -> None:
    with pytest.raises(ValueError):
        snapshot_folder(bad)
