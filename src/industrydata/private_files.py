"""Owner-only folders and files for what the service keeps to itself.

The data dir, the SQLite database (SQLite gives its ``-wal`` and ``-shm`` files the
database file's mode), the signing and sealing keys: nobody but the service's user may read
them. Folders are created 0700 and files 0600, and modes left too open by an older version
or an operator are tightened when the service opens them. The lake is not touched: files
published for consumers keep the modes the umask gives them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "PRIVATE_FILE_MODE",
    "PRIVATE_FOLDER_MODE",
    "create_private_file",
    "create_private_folders",
    "publish_private_file_once",
    "private_folder",
    "private_sqlite_database",
    "tighten_file",
]

PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def create_private_folders(folder: Path) -> None:
    """Create ``folder`` and any missing folder above it, each 0700 (existing ones are left
    as they are: they may be the operator's)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir(mode=PRIVATE_FOLDER_MODE, exist_ok=True)


def private_folder(folder: Path) -> Path:
    """``folder``, created if missing and made 0700: a folder the service owns."""
    create_private_folders(folder)
    folder.chmod(PRIVATE_FOLDER_MODE)
    return folder


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists; tighten it to 0600 if it does."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    os.close(descriptor)
    tighten_file(path)


def publish_private_file_once(path: Path, content: bytes) -> bytes:
    """Write ``content`` to ``path`` (0600) unless it exists; the content ``path`` holds.

    Processes starting together (production: several API processes and workers on one data
    dir) may each make a key: the first to link its file wins, and every process uses the
    winner's, so none seals or signs with a key the others do not have.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE_MODE
    )
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)
    except FileExistsError:
        return path.read_bytes()
    finally:
        temporary.unlink()
    return content


def private_sqlite_database(path: Path) -> None:
    """The database file 0600 before SQLite opens it (its ``-wal`` and ``-shm`` files take
    its mode), in folders created 0700; files of an existing database are tightened."""
    create_private_folders(path.parent)
    create_private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten_file(path.with_name(path.name + suffix))


def tighten_file(path: Path) -> None:
    """Make an existing file 0600 (nothing when it is missing)."""
    try:
        path.chmod(PRIVATE_FILE_MODE)
    except FileNotFoundError:
        pass
