"""An in-memory destination, for tests that need no files.

A streamed object is added only when its writer block ends without an exception, like the
other destinations' atomic writes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from .destination import Destination

__all__ = ["MemoryDestination"]


class MemoryDestination(Destination):
    """Objects kept in the ``objects`` dict (path → bytes)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    @contextmanager
    def _open_writer(self, path: str) -> Iterator[BinaryIO]:
        stream = io.BytesIO()
        yield stream
        self.objects[path] = stream.getvalue()

    def _create_new(self, path: str, data: bytes) -> bool:
        if path in self.objects:
            return False
        self.objects[path] = data
        return True

    def _read_bytes(self, path: str) -> bytes:
        try:
            return self.objects[path]
        except KeyError:
            raise FileNotFoundError(2, "No such object", path) from None

    def _exists(self, path: str) -> bool:
        return path in self.objects

    def _list(self, prefix: str) -> list[str]:
        return [path for path in self.objects if _under(path, prefix)]

    def _delete(self, path: str) -> None:
        for name in [name for name in self.objects if name == path or _under(name, path)]:
            del self.objects[name]


def _under(path: str, folder: str) -> bool:
    return not folder or path.startswith(folder + "/")
