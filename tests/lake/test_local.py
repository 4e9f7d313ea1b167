"""A local destination never shows a half-written file under its final name: writes go to a
hidden temporary file in the same folder and are renamed into place when complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from industrydata.lake import LocalDestination


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
