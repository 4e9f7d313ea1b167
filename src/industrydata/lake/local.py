"""A destination on the local file system (``file://`` URLs).

Objects are files under a root folder. Every write goes to a hidden temporary name in the
object's own folder and is renamed over the final name with ``os.replace`` once complete, so
a reader never meets a half-written file under its final name. A small object
(``write_bytes``, ``create_new``: manifests, Delta commits) is flushed to disk (file, then
folder) before it is renamed; a stream's file (``open_writer``: part and data files) only
starts its write-back, and every stream written so far is flushed (files, then their
folders) before the next small object is written. The small objects are what name the
streams, so none can name a file a crash could lose, and a snapshot's 26 part files cost
one flush each at the end instead of a flush of file and folder each, one after another.

Nothing here follows a symbolic link: whoever can write inside a destination folder must
not make the service write, read or delete outside it. Every operation walks from ``/`` to
its folder one component at a time with ``O_NOFOLLOW`` directory descriptors, and opens,
links, renames and deletes names relative to the last descriptor; a link met on the way
(the root itself included) fails the operation with ``SymlinkRefused`` and touches nothing.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import DestinationUnreachable, ExportError
from .destination import Destination, DestinationIdentity

__all__ = ["LocalDestination", "SymlinkRefused"]

TEMPORARY_PREFIX = ".tmp-"

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class SymlinkRefused(ExportError):
    """A folder or file on the way to an object is a symbolic link (or not a folder)."""


class LocalDestination(Destination):
    """Objects as files under ``root`` (absolute, without symbolic links: ``open_destination``
    resolves it and checks it is allowed)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._unflushed: list[str] = []
        """Streams renamed into place whose file and folders are not flushed yet."""

    def __repr__(self) -> str:
        return f"LocalDestination({str(self.root)!r})"

    def identity(self) -> DestinationIdentity:
        """The root folder's absolute path."""
        return DestinationIdentity("file", "/".join(self.root.parts[1:]))

    @contextmanager
    def _folder(self, folder: str, *, create: bool = False) -> Iterator[int]:
        """A descriptor of ``root/folder`` reached without following any link."""
        above = list(self.root.parts[1:])
        below = folder.split("/") if folder else []
        descriptor = os.open("/", _DIRECTORY_FLAGS)
        try:
            for depth, name in enumerate([*above, *below]):
                shown = "/".join(below[: depth - len(above) + 1])
                try:
                    child = _open_folder(descriptor, name, shown, create=create)
                except OSError as exc:
                    if depth < len(above) and (create or exc.errno != errno.ENOENT):
                        # The root cannot be made or opened: the destination is unusable (a
                        # root not made yet only means that nothing is there to read).
                        raise DestinationUnreachable(
                            f"The destination folder cannot be used: {exc.strerror}."
                        ) from exc
                    raise
                os.close(descriptor)
                descriptor = child
            yield descriptor
        finally:
            os.close(descriptor)

    @contextmanager
    def _parent(self, path: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
        folder, _, name = path.rpartition("/")
        with self._folder(folder, create=create) as descriptor:
            yield descriptor, name

    @contextmanager
    def _open_writer(self, path: str) -> Iterator[BinaryIO]:
        with self._parent(path, create=True) as (folder, name):
            temporary = _temporary_name(name)
            stream = os.fdopen(os.open(temporary, _NEW_FILE_FLAGS, 0o666, dir_fd=folder), "wb")
            try:
                with stream:
                    yield stream
                    stream.flush()
                    _start_write_back(stream.fileno())
                os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                _unlink_quietly(temporary, folder)
                raise
        self._unflushed.append(path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        self._flush_streams()
        with self._parent(path, create=True) as (folder, name):
            temporary = _temporary_name(name)
            try:
                _write_flushed(temporary, folder, data)
                os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
                os.fsync(folder)
            except BaseException:
                _unlink_quietly(temporary, folder)
                raise

    def _flush_streams(self) -> None:
        """Flush the streams written since the last small object: each file, then each folder
        from theirs up to the root (a new folder's name is in its parent)."""
        folders: dict[str, None] = {}
        for path in self._unflushed:
            parts = path.split("/")[:-1]
            folders.update(("/".join(parts[:depth]), None) for depth in range(len(parts), -1, -1))
            try:
                with self._parent(path) as (folder, name):
                    try:
                        descriptor = os.open(name, _READ_FLAGS, dir_fd=folder)
                    except OSError as exc:
                        raise _refusal(exc, folder, name, path) from exc
                    try:
                        os.fsync(descriptor)
                    finally:
                        os.close(descriptor)
            except FileNotFoundError:
                continue  # deleted since (an unpublished folder discarded): nothing to flush
        for folder in folders:
            try:
                with self._folder(folder) as descriptor:
                    os.fsync(descriptor)
            except FileNotFoundError:
                continue
        self._unflushed.clear()

    def _create_new(self, path: str, data: bytes) -> bool:
        # A hard link fails when the name exists (a planted link too): the complete file
        # appears under its name at once, or not at all.
        self._flush_streams()
        with self._parent(path, create=True) as (folder, name):
            temporary = _temporary_name(name)
            try:
                _write_flushed(temporary, folder, data)
                try:
                    os.link(
                        temporary,
                        name,
                        src_dir_fd=folder,
                        dst_dir_fd=folder,
                        follow_symlinks=False,
                    )
                except FileExistsError:
                    return False
                os.fsync(folder)
                return True
            finally:
                _unlink_quietly(temporary, folder)

    def _read_bytes(self, path: str) -> bytes:
        with self._parent(path) as (folder, name):
            try:
                descriptor = os.open(name, _READ_FLAGS, dir_fd=folder)
            except OSError as exc:
                raise _refusal(exc, folder, name, path) from exc
            with os.fdopen(descriptor, "rb") as stream:
                return stream.read()

    def _exists(self, path: str) -> bool:
        try:
            with self._parent(path) as (folder, name):
                return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return False

    def _list(self, prefix: str) -> list[str]:
        try:
            with self._folder(prefix) as folder:
                return _files_below(folder, prefix)
        except FileNotFoundError:
            return []

    def _sweep_interrupted_writes(self, folder: str) -> None:
        try:
            with self._folder(folder) as descriptor:
                with os.scandir(descriptor) as entries:
                    leftovers = [
                        entry.name
                        for entry in entries
                        if entry.name.startswith(TEMPORARY_PREFIX)
                        and not entry.is_dir(follow_symlinks=False)
                    ]
                for name in leftovers:
                    _unlink_quietly(name, descriptor)
        except FileNotFoundError:
            return

    def delta_location(self) -> tuple[str, dict[str, str]]:
        """The root folder's absolute path; local tables need no storage options."""
        return str(self.root), {}

    def _delete(self, path: str) -> None:
        try:
            with self._parent(path) as (folder, name):
                mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    # The descriptor-based rmtree never follows a link, at any depth.
                    shutil.rmtree(name, dir_fd=folder)
                else:
                    os.unlink(name, dir_fd=folder)
        except FileNotFoundError:
            return


def _open_folder(parent: int, name: str, shown: str, *, create: bool = False) -> int:
    """A descriptor of the folder ``name`` in ``parent``, unless ``name`` is a link.

    With ``create`` a missing folder is made: the root was checked inside an allowed root when
    the destination was opened, and its folders are made by the first write, not before."""
    if create:
        try:
            os.mkdir(name, 0o777, dir_fd=parent)
        except FileExistsError:
            pass
        except OSError as exc:
            raise _refusal(exc, parent, name, shown) from exc
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as exc:
        raise _refusal(exc, parent, name, shown) from exc


def _refusal(exc: OSError, parent: int, name: str, shown: str) -> OSError | SymlinkRefused:
    """``SymlinkRefused`` when ``name`` in ``parent`` is a link, ``exc`` otherwise.

    ``shown`` is the path inside the destination ('' for the root or a folder above it):
    the message names no server path the client did not give.
    """
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
        return exc
    try:
        is_link = stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return exc
    if not is_link:
        return exc
    where = f"'{shown}' in the destination" if shown else "The destination folder (or one above it)"
    return SymlinkRefused(
        f"{where} is a symbolic link; nothing is written, read or deleted through links.",
        target=shown or None,
    )


def _files_below(folder: int, prefix: str) -> list[str]:
    files: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            path = f"{prefix}/{entry.name}" if prefix else entry.name
            if entry.is_dir(follow_symlinks=False):
                child = os.open(entry.name, _DIRECTORY_FLAGS, dir_fd=folder)
                try:
                    files.extend(_files_below(child, path))
                finally:
                    os.close(child)
            elif entry.is_file(follow_symlinks=False) and not entry.name.startswith(
                TEMPORARY_PREFIX
            ):
                files.append(path)
    return files


def _start_write_back(descriptor: int) -> None:
    """Start writing the file to disk now, so the flush before the next small object finds
    its data on the way (where the system has ``posix_fadvise``; elsewhere that flush does it
    all)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)


def _write_flushed(name: str, folder: int, data: bytes) -> None:
    """A new file ``name`` in ``folder`` holding ``data``, flushed to disk."""
    with os.fdopen(os.open(name, _NEW_FILE_FLAGS, 0o666, dir_fd=folder), "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _temporary_name(name: str) -> str:
    return f"{TEMPORARY_PREFIX}{name}-{uuid.uuid4().hex}"


def _unlink_quietly(name: str, folder: int) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except FileNotFoundError:
        pass
