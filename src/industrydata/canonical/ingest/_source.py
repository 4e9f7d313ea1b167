"""Where the files of an upload are read from: a folder, or a zip archive of one.

OneRoster packs its CSV files in a zip; SDS uploads are folders. Either way a loader sees the
same thing: the exact names of the files present and a binary stream per file. Zip members
are streamed, never extracted. An archive whose files all sit in one top-level folder (what
zipping a folder produces) is read from inside that folder; macOS's ``__MACOSX/`` entries are
ignored.
"""

from __future__ import annotations

import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ...errors import LoadError, LoadProblem

__all__ = ["Upload", "open_upload"]

_MAC_RESOURCES = "__MACOSX/"
"""The resource forks macOS adds when it zips a folder; never part of an upload."""


class Upload(ABC):
    """The files of one upload, by exact name, with their sizes in bytes."""

    def __init__(self, location: str, sizes: dict[str, int]) -> None:
        self.location = location
        self.sizes = sizes

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.sizes)

    @abstractmethod
    def open(self, name: str) -> BinaryIO:
        """A binary stream of the file ``name`` (one of ``names``)."""


class _FolderUpload(Upload):
    def __init__(self, folder: Path) -> None:
        files = {path.name: path.stat().st_size for path in folder.iterdir() if path.is_file()}
        super().__init__(str(folder), files)
        self._folder = folder

    def open(self, name: str) -> BinaryIO:
        return (self._folder / name).open("rb")


class _ZipUpload(Upload):
    def __init__(self, path: Path, archive: zipfile.ZipFile) -> None:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and not info.filename.startswith(_MAC_RESOURCES)
        ]
        prefix = _common_folder(members)
        self._members = {info.filename[len(prefix) :]: info for info in members}
        sizes = {name: info.file_size for name, info in self._members.items() if "/" not in name}
        super().__init__(str(path), sizes)
        self._archive = archive

    def open(self, name: str) -> BinaryIO:
        return self._archive.open(self._members[name])  # type: ignore[return-value]


def _common_folder(members: list[zipfile.ZipInfo]) -> str:
    """``folder/`` when every member lies in that one top-level folder, else ``""``."""
    tops = {info.filename.split("/", 1)[0] for info in members}
    if len(tops) == 1 and all("/" in info.filename for info in members):
        return tops.pop() + "/"
    return ""


@contextmanager
def open_upload(path: Path) -> Iterator[Upload]:
    """The upload at ``path``: a folder or a zip archive.

    Raises:
        LoadError: ``path`` is neither (a structural problem: nothing can be loaded).
    """
    path = Path(path)
    if path.is_dir():
        yield _FolderUpload(path)
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            yield _ZipUpload(path, archive)
    else:
        problem = LoadProblem("error", path.name, None, None, None, "not a folder or zip archive")
        raise LoadError(f"{path.name} is not a folder or zip archive", problems=[problem])
