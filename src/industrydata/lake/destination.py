"""The destination interface: the few storage operations the lake writers need.

A destination is a namespace of objects named by ``/``-separated relative paths
(``roster/2021-09-05T06-16-22/Person/part-00000-….csv``). Whole objects appear atomically:
a reader sees an object's old content or its new content, never a half-written one. The
public methods check paths and translate storage exceptions (``storage_errors``) once;
implementations provide the underscored primitives.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import InvalidDestination
from ._storage_errors import storage_errors, unreachable_on_failure

__all__ = ["Destination", "DestinationIdentity"]

PROBE_PREFIX = ".industrydata-probe-"


def _check_object_path(path: str, *, allow_root: bool = False) -> str:
    """``path`` itself when it is a clean relative object path; ValueError otherwise.

    Paths come from the writers, never from clients, so a bad one is a bug.
    """
    if path == "" and allow_root:
        return path
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a clean relative object path: {path!r}")
    return path


@dataclass(frozen=True)
class DestinationIdentity:
    """What a destination is, independent of how its URL spelled it: a ``namespace`` (a
    file system, or one blob container at one endpoint) and a ``path`` of ``/``-separated
    folders in it ('' for its root). ``store.claims`` keeps two flows from overlapping ones."""

    namespace: str
    path: str


class Destination(ABC):
    """Storage the writers publish snapshots to; pick one with ``open_destination``."""

    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace the object at ``path`` with ``data``, atomically."""
        with storage_errors("write", _check_object_path(path)):
            self._write_bytes(path, data)

    def create_new(self, path: str, data: bytes) -> bool:
        """Create the object at ``path`` with ``data`` unless one exists there (then return
        False), atomically: of writers racing to create one path, exactly one succeeds."""
        with storage_errors("write", _check_object_path(path)):
            return self._create_new(path, data)

    @contextmanager
    def open_writer(self, path: str) -> Iterator[BinaryIO]:
        """A stream for a large object; it appears under ``path`` only when the block ends
        without an exception, and is discarded otherwise. It is sure to survive a crash once
        a later ``write_bytes`` or ``create_new`` has returned (the objects that name it)."""
        with storage_errors("write", _check_object_path(path)), self._open_writer(path) as stream:
            yield stream

    def read_bytes(self, path: str) -> bytes:
        """The content of the object at ``path``."""
        with storage_errors("read", _check_object_path(path)):
            return self._read_bytes(path)

    def exists(self, path: str) -> bool:
        """Whether an object exists at ``path``."""
        with storage_errors("check", _check_object_path(path)):
            return self._exists(path)

    def list(self, prefix: str = "") -> list[str]:
        """The paths of all objects under the folder ``prefix`` ('' for all), sorted."""
        prefix = prefix.rstrip("/")
        with storage_errors("list", _check_object_path(prefix, allow_root=True)):
            return sorted(self._list(prefix))

    def delete(self, path: str) -> None:
        """Delete the object at ``path``, or every object under the folder ``path``."""
        path = path.rstrip("/")
        with storage_errors("delete", _check_object_path(path)):
            self._delete(path)

    def sweep_interrupted_writes(self, folder: str) -> None:
        """Remove what writes interrupted by a crash left directly in ``folder`` (not in its
        subfolders), such as a local temporary file. Call it only when nothing can be writing
        there: the writers do, after publishing, on a destination that one flow writes."""
        folder = folder.rstrip("/")
        with storage_errors("clean", _check_object_path(folder, allow_root=True)):
            self._sweep_interrupted_writes(folder)

    def delta_location(self) -> tuple[str, dict[str, str]]:
        """Where ``deltalake`` finds this destination: a table URI root and the
        ``storage_options`` to open it with (they may hold a credential: never log them).

        ``<root>/<Table>`` must be the folder that object paths ``<Table>/…`` name here, so
        the Delta writer can read its commits back through ``read_bytes``. A local folder
        gives its absolute path and no options; an Azure container gives
        ``abfss://<container>@<account>.dfs.core.windows.net/<prefix>`` (or ``az://``) with
        object_store's Azure options: ``account_name`` and ``account_key`` or ``sas_token``,
        plus, for Azurite, ``endpoint`` (the blob endpoint with its account path) and
        ``allow_http: "true"``.

        Raises:
            InvalidDestination: the destination cannot hold Delta tables (the in-memory one).
        """
        raise InvalidDestination("This destination cannot hold Delta tables.", target="format")

    def identity(self) -> DestinationIdentity:
        """Where this destination writes, for telling whether two flows share storage.

        Raises:
            InvalidDestination: the destination cannot be shared out (the in-memory one).
        """
        raise InvalidDestination("This destination cannot be claimed.", target="url")

    def probe(self) -> None:
        """Write and delete a small object: proof the destination is reachable and writable.

        Raises:
            DestinationUnreachable: with the storage error's message.
        """
        path = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        with unreachable_on_failure():
            self.write_bytes(path, b"industrydata destination probe\n")
            self.delete(path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        with self._open_writer(path) as stream:
            stream.write(data)

    def _sweep_interrupted_writes(self, folder: str) -> None:
        """Nothing by default: a store whose interrupted uploads leave no object."""
        return None

    @abstractmethod
    def _open_writer(self, path: str) -> AbstractContextManager[BinaryIO]: ...

    @abstractmethod
    def _create_new(self, path: str, data: bytes) -> bool: ...

    @abstractmethod
    def _read_bytes(self, path: str) -> bytes: ...

    @abstractmethod
    def _exists(self, path: str) -> bool: ...

    @abstractmethod
    def _list(self, prefix: str) -> list[str]: ...

    @abstractmethod
    def _delete(self, path: str) -> None: ...
