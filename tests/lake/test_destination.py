"""Every destination offers the same operations with the same meaning: whole objects appear
atomically, folders list and delete recursively, object paths are clean relative paths,
and the probe leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from industrydata.errors import DestinationUnreachable, ExportError
from industrydata.lake import Destination, LocalDestination, MemoryDestination


@pytest.fixture(params=["local", "memory"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Destination:
    if request.param == "local":
        return LocalDestination(tmp_path / "lake")
    return MemoryDestination()


def test_write_bytes_then_read_bytes_returns_content(destination: Destination) -> None:
    destination.write_bytes("a/b/c.json", b"one")
    destination.write_bytes("a/b/c.json", b"two")

    assert destination.read_bytes("a/b/c.json") == b"two"
    assert destination.exists("a/b/c.json")
    assert not destination.exists("a/b/other.json")


def test_open_writer_streams_into_one_object(destination: Destination) -> None:
    with destination.open_writer("t/part.csv") as stream:
        stream.write(b"a,b\n")
        stream.write(memoryview(b"c,d\n"))

    assert destination.read_bytes("t/part.csv") == b"a,b\nc,d\n"


def test_open_writer_failure_leaves_no_object(destination: Destination) -> None:
    with pytest.raises(RuntimeError), destination.open_writer("t/part.csv") as stream:
        stream.write(b"half")
        raise RuntimeError("writer died")

    assert not destination.exists("t/part.csv")
    assert destination.list() == []


def test_create_new_creates_once_and_never_replaces(destination: Destination) -> None:
    assert destination.create_new("t/_delta_log/0.json", b"first")
    assert not destination.create_new("t/_delta_log/0.json", b"second")

    assert destination.read_bytes("t/_delta_log/0.json") == b"first"
    assert destination.list() == ["t/_delta_log/0.json"]


def test_list_returns_objects_under_a_folder_sorted(destination: Destination) -> None:
    for path in ["r/2/b.csv", "r/1/a.csv", "r10/x.csv", "top.json"]:
        destination.write_bytes(path, b"x")

    assert destination.list("r") == ["r/1/a.csv", "r/2/b.csv"]
    assert destination.list("r/") == ["r/1/a.csv", "r/2/b.csv"]
    assert destination.list() == ["r/1/a.csv", "r/2/b.csv", "r10/x.csv", "top.json"]
    assert destination.list("missing") == []


def test_delete_removes_an_object_or_a_folder(destination: Destination) -> None:
    for path in ["r/1/a.csv", "r/1/b.csv", "r/2/c.csv", "keep.json"]:
        destination.write_bytes(path, b"x")

    destination.delete("r/1")
    destination.delete("r/2/c.csv")
    destination.delete("never/was")

    assert destination.list() == ["keep.json"]


def test_read_bytes_missing_object_raises_export_error(destination: Destination) -> None:
    with pytest.raises(ExportError) as raised:
        destination.read_bytes("missing.json")

    assert "missing.json" in raised.value.message


def test_probe_leaves_nothing_behind(destination: Destination) -> None:
    destination.probe()

    assert destination.list() == []


@pytest.mark.parametrize("path", ["", "/abs", "a//b", "a/../b", "..", "./a", "a/.", "a\\b", "a/"])
def test_write_bytes_unclean_path_raises(destination: Destination, path: str) -> None:
    with pytest.raises(ValueError):
        destination.write_bytes(path, b"x")


def test_probe_unwritable_destination_raises_destination_unreachable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a folder")

    with pytest.raises(DestinationUnreachable) as raised:
        LocalDestination(blocker / "lake").probe()

    assert "Not a directory" in raised.value.message
    assert str(tmp_path) not in raised.value.message
