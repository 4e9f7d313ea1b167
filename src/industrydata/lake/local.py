"""A destination on the local file system (``file://`` URLs).

Objects are files under a root folder. Every write goes to a hidden temporary name in the
object's own folder and is renamed over the final name with ``os.replace`` once complete
and flushed to disk (file, then folder), so a reader (or a crash) never meets a
half-written file under its final name.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .destination import Destination

__all__ = ["LocalDestination"]

TEMPORARY_PREFIX = ".tmp-"


class LocalDestination(Destination):
    """Objects as files under ``root``; ``open_destination`` checks the root is allowed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalDestination({str(self.root)!r})"

    def _file(self, path: str) -> Path:
        return self.root.joinpath(*path.split("/")) if path else self.root

    @contextmanager
    def _open_writer(self, path: str) -> Iterator[BinaryIO]:
        target = self._file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f"{TEMPORARY_PREFIX}{target.name}-{uuid.uuid4().hex}")
        try:
            with open(temporary, "xb") as stream:
                yield stream
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
            _sync_folder(target.parent)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def _create_new(self, path: str, data: bytes) -> bool:
        # A hard link fails when the name exists: the complete file appears under its name
        # at once, or not at all.
        target = self._file(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f"{TEMPORARY_PREFIX}{target.name}-{uuid.uuid4().hex}")
        try:
            with open(temporary, "xb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            try:
                os.link(temporary, target)
            except FileExistsError:
                return False
            _sync_folder(target.parent)
            return True
        finally:
            temporary.unlink(missing_ok=True)

    def _read_bytes(self, path: str) -> bytes:
        return self._file(path).read_bytes()

    def _exists(self, path: str) -> bool:
        return self._file(path).is_file()

    def _list(self, prefix: str) -> list[str]:
        folder = self._file(prefix)
        if not folder.is_dir():
            return []
        return [
            file.relative_to(self.root).as_posix()
            for file in folder.rglob("*")
            if file.is_file() and not file.name.startswith(TEMPORARY_PREFIX)
        ]

    def _sweep_interrupted_writes(self, folder: str) -> None:
        directory = self._file(folder)
        if directory.is_dir():
            for leftover in directory.glob(f"{TEMPORARY_PREFIX}*"):
                if leftover.is_file() and not leftover.is_symlink():
                    leftover.unlink(missing_ok=True)

    def delta_location(self) -> tuple[str, dict[str, str]]:
        """The root folder's absolute path; local tables need no storage options."""
        return str(self.root), {}

    def _delete(self, path: str) -> None:
        target = self._file(path)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """Make a rename durable: a crash must not bring back the old object after a publish."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
