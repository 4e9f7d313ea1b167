"""A local destination never shows a half-written file under its final name: writes go to a
hidden temporary file in the same folder and are renamed into place when complete. It never
writes, reads or deletes through a symbolic link planted in it (or in place of its root)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from industrydata.canonical.tables import table_by_name
from industrydata.errors import ExportError
from industrydata.lake import LocalDestination, write_delta, write_parquet, write_sds_csv
from industrydata.lake._delta_log import CHECKPOINT_INTERVAL
from industrydata.lake.local import SymlinkRefused

from .delta_support import FakeChanges, read_delta


def test_open_writer_hides_file_until_complete(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)

    with destination.open_writer("roster/T/part.csv") as stream:
        stream.write(b"row\n")
        folder = tmp_path / "roster" / "T"
        assert not (folder / "part.csv").exists()
        assert [p.name.startswith(".tmp-") for p in folder.iterdir()] == [True]
        assert destination.list() == []

    assert [p.name for p in folder.iterdir()] == ["part.csv"]
    assert (folder / "part.csv").read_bytes() == b"row\n"


def test_open_writer_failure_removes_temporary_file(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)

    with pytest.raises(KeyboardInterrupt), destination.open_writer("T/part.csv") as stream:
        stream.write(b"half")
        raise KeyboardInterrupt

    assert list((tmp_path / "T").iterdir()) == []


def test_write_bytes_replaces_existing_file_whole(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)
    destination.write_bytes("current.json", b"old")

    with pytest.raises(RuntimeError), destination.open_writer("current.json") as stream:
        stream.write(b"new but unfinished")
        raise RuntimeError

    assert (tmp_path / "current.json").read_bytes() == b"old"
    destination.write_bytes("current.json", b"new")
    assert (tmp_path / "current.json").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["current.json"]


def test_delete_folder_does_not_follow_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_bytes(b"keep")
    root = tmp_path / "lake"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)

    LocalDestination(root).delete("link")

    assert (outside / "precious.txt").read_bytes() == b"keep"
    assert not (root / "link").exists()


# Symbolic links planted in a destination: nothing is written, read or deleted through them.


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the destination holding a file that must stay as it is."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.txt").write_bytes(b"keep")
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "lake"
    folder.mkdir()
    return folder


def _untouched(outside: Path) -> bool:
    return [p.name for p in outside.rglob("*")] == ["precious.txt"] and (
        outside / "precious.txt"
    ).read_bytes() == b"keep"


def test_writes_refuse_a_linked_folder_inside_the_destination(root: Path, outside: Path) -> None:
    (root / "roster").symlink_to(outside, target_is_directory=True)
    destination = LocalDestination(root)

    with pytest.raises(SymlinkRefused, match="'roster' in the destination is a symbolic link"):
        destination.write_bytes("roster/current.json", b"x")
    with pytest.raises(SymlinkRefused):
        destination.create_new("roster/T/_delta_log/00.json", b"x")
    with pytest.raises(SymlinkRefused), destination.open_writer("roster/T/part.csv"):
        pass
    with pytest.raises(SymlinkRefused):
        destination.list("roster")
    with pytest.raises(SymlinkRefused):
        destination.read_bytes("roster/precious.txt")

    assert _untouched(outside)


def test_a_linked_root_is_refused(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "lake"
    root.symlink_to(outside, target_is_directory=True)

    with pytest.raises(SymlinkRefused, match="The destination folder .* is a symbolic link"):
        LocalDestination(root).write_bytes("current.json", b"x")
    with pytest.raises(SymlinkRefused):
        LocalDestination(root / "below").write_bytes("current.json", b"x")

    assert _untouched(outside)


def test_a_linked_file_is_replaced_not_written_through(root: Path, outside: Path) -> None:
    (root / "current.json").symlink_to(outside / "precious.txt")
    (root / "new.json").symlink_to(outside / "precious.txt")
    destination = LocalDestination(root)

    destination.write_bytes("current.json", b"pointer")

    assert not (root / "current.json").is_symlink()
    assert (root / "current.json").read_bytes() == b"pointer"
    assert destination.create_new("new.json", b"commit") is False
    assert not destination.exists("new.json")
    with pytest.raises(ExportError):
        destination.read_bytes("new.json")
    assert _untouched(outside)


def test_list_and_sweep_do_not_follow_links(root: Path, outside: Path) -> None:
    (root / "data").mkdir()
    (root / "data" / "linked").symlink_to(outside, target_is_directory=True)
    (root / "data" / ".tmp-left").symlink_to(outside / "precious.txt")
    (root / "data" / ".tmp-folder").symlink_to(outside, target_is_directory=True)
    destination = LocalDestination(root)

    assert destination.list() == []
    destination.sweep_interrupted_writes("data")

    assert sorted(p.name for p in (root / "data").iterdir()) == ["linked"]
    assert _untouched(outside)


def test_delete_refuses_a_linked_folder_on_the_way(root: Path, outside: Path) -> None:
    (outside / "sub").mkdir()
    (outside / "sub" / "file").write_bytes(b"keep")
    (root / "roster").symlink_to(outside, target_is_directory=True)

    with pytest.raises(SymlinkRefused):
        LocalDestination(root).delete("roster/sub")

    assert (outside / "sub" / "file").read_bytes() == b"keep"


def test_delete_of_a_folder_keeps_links_below_it_and_their_targets(
    root: Path, outside: Path
) -> None:
    (root / "snapshot" / "Person").mkdir(parents=True)
    (root / "snapshot" / "Person" / "part.csv").write_bytes(b"row")
    (root / "snapshot" / "Linked").symlink_to(outside, target_is_directory=True)

    LocalDestination(root).delete("snapshot")

    assert not (root / "snapshot").exists()
    assert _untouched(outside)


def _csv_or_parquet(writer):  # type: ignore[no-untyped-def]
    def publish(root: Path) -> None:
        writer(
            LocalDestination(root),
            snapshot_id="2026-12-02T06-00-00",
            tables=[(table_by_name("Person"), [])],
        )

    return publish


def _delta(root: Path) -> None:
    store = FakeChanges()
    store.put(table_by_name("Person"), [{"Id": "p1", "GivenName": "Ada"}])
    write_delta(
        LocalDestination(root),
        run_id="run",
        run_time=datetime(2026, 12, 2, 6, 0, 0),
        tables=[table_by_name("Person")],
        source=store,
    )


@pytest.mark.parametrize(
    ("publish", "linked"),
    [
        (_csv_or_parquet(write_sds_csv), "roster"),
        (_csv_or_parquet(write_parquet), "roster"),
        (_csv_or_parquet(write_sds_csv), "schema"),
        (_delta, "Person"),
        (_delta, "Person/_delta_log"),
    ],
    ids=["sdsCsv-roster", "parquet-roster", "sdsCsv-schema", "delta-table", "delta-log"],
)
def test_writers_fail_cleanly_on_a_planted_link(  # type: ignore[no-untyped-def]
    publish, linked: str, root: Path, outside: Path
) -> None:
    (root / linked).parent.mkdir(parents=True, exist_ok=True)
    (root / linked).symlink_to(outside, target_is_directory=True)

    with pytest.raises(SymlinkRefused):
        publish(root)

    assert _untouched(outside)


def test_writers_replace_a_linked_manifest_instead_of_writing_through_it(
    root: Path, outside: Path
) -> None:
    (root / "roster").mkdir()
    (root / "roster" / "current.roster.manifest.cdm.json").symlink_to(outside / "precious.txt")
    (root / "current.manifest.cdm.json").symlink_to(outside / "precious.txt")

    _csv_or_parquet(write_sds_csv)(root)

    assert not (root / "roster" / "current.roster.manifest.cdm.json").is_symlink()
    assert not (root / "current.manifest.cdm.json").is_symlink()
    assert _untouched(outside)


def test_delta_checkpoints_go_through_the_destination(root: Path, outside: Path) -> None:
    """delta-rs writes checkpoints by path; it works on a private copy of the log, so a link
    planted where the checkpoint goes is replaced and its target untouched."""
    person = table_by_name("Person")
    store = FakeChanges()
    log_folder = root / "Person" / "_delta_log"
    for run in range(2 * CHECKPOINT_INTERVAL + 1):
        store.put(person, [{"Id": f"p{run:04d}", "GivenName": f"run {run}"}])
        if run == 2 * CHECKPOINT_INTERVAL - 1:
            (log_folder / "_last_checkpoint").unlink()
            (log_folder / "_last_checkpoint").symlink_to(outside / "precious.txt")
        write_delta(
            LocalDestination(root),
            run_id=f"run-{run}",
            run_time=datetime(2026, 12, 2, 6, 0, 0) + timedelta(minutes=run),
            tables=[person],
            source=store,
        )

    names = {path.name for path in log_folder.iterdir()}
    assert {
        f"{CHECKPOINT_INTERVAL:020d}.checkpoint.parquet",
        f"{2 * CHECKPOINT_INTERVAL:020d}.checkpoint.parquet",
        "_last_checkpoint",
    } <= names
    assert not (log_folder / "_last_checkpoint").is_symlink()
    assert json.loads((log_folder / "_last_checkpoint").read_bytes())["version"] == (
        2 * CHECKPOINT_INTERVAL
    )
    assert not any(name.startswith(".tmp-") for name in names)
    assert read_delta(str(root / "Person"), person).equals(store.current(person))
    assert _untouched(outside)


def test_streams_are_flushed_before_the_next_small_object_is_written(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash can lose a part file only while no manifest or commit names it: each stream is
    flushed (file, its folders) before the next ``write_bytes``/``create_new`` renames its
    object into place, and not before (one flush each at the end, not one after another)."""
    events: list[str] = []
    fsync, replace, link = os.fsync, os.replace, os.link

    def shown(descriptor: int) -> str:
        return Path(os.readlink(f"/proc/self/fd/{descriptor}")).relative_to(root.parent).as_posix()

    def logged_fsync(descriptor: int) -> None:
        events.append(f"flush {shown(descriptor)}")
        fsync(descriptor)

    def logged_replace(source: str, target: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
        events.append(f"rename {shown(dst_dir_fd)}/{target}")
        replace(source, target, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def logged_link(source: str, target: str, **options: object) -> None:
        events.append(f"link {shown(options['dst_dir_fd'])}/{target}")  # type: ignore[arg-type]
        link(source, target, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged_replace)
    monkeypatch.setattr(os, "link", logged_link)
    destination = LocalDestination(root)

    for table in ("Person", "Section"):
        with destination.open_writer(f"roster/S1/{table}/part.csv") as stream:
            stream.write(b"row\n")
    streams_only = list(events)
    destination.write_bytes("roster/S1/S1.manifest.cdm.json", b"{}")
    with destination.open_writer("Person/part.parquet") as stream:
        stream.write(b"data")
    destination.create_new("Person/_delta_log/00.json", b"{}")

    assert streams_only == [
        "rename lake/roster/S1/Person/part.csv",
        "rename lake/roster/S1/Section/part.csv",
    ]
    manifest = events.index("rename lake/roster/S1/S1.manifest.cdm.json")
    assert set(events[2:manifest]) >= {
        "flush lake/roster/S1/Person/part.csv",
        "flush lake/roster/S1/Section/part.csv",
        "flush lake/roster/S1/Person",
        "flush lake/roster/S1/Section",
        "flush lake/roster/S1",
        "flush lake/roster",
        "flush lake",
    }
    commit = events.index("link lake/Person/_delta_log/00.json")
    assert {"flush lake/Person/part.parquet", "flush lake/Person"} <= set(events[manifest:commit])
    assert (root / "roster" / "S1" / "Person" / "part.csv").read_bytes() == b"row\n"


def test_a_stream_deleted_before_the_flush_is_skipped(root: Path) -> None:
    destination = LocalDestination(root)
    with destination.open_writer("roster/S1/Person/part.csv") as stream:
        stream.write(b"row\n")
    destination.delete("roster/S1")

    destination.write_bytes("roster/current.json", b"{}")

    assert destination.list() == ["roster/current.json"]


def test_a_link_planted_over_an_unflushed_stream_fails_the_next_write(
    root: Path, outside: Path
) -> None:
    destination = LocalDestination(root)
    with destination.open_writer("roster/S1/Person/part.csv") as stream:
        stream.write(b"row\n")
    (root / "roster" / "S1" / "Person" / "part.csv").unlink()
    (root / "roster" / "S1" / "Person" / "part.csv").symlink_to(outside / "precious.txt")

    with pytest.raises(SymlinkRefused):
        destination.write_bytes("roster/current.json", b"{}")

    assert not (root / "roster" / "current.json").exists()
    assert _untouched(outside)
