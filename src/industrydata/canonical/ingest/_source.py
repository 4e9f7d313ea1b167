"""Where the files of an upload are read from: a folder, or a zip archive of one.

OneRoster packs its CSV files in a zip; SDS uploads are folders. Either way a loader sees the
same thing: the exact names of the files present and a binary stream per file. Zip members
are streamed, never extracted. An archive whose files all sit in one top-level folder (what
zipping a folder produces) is read from inside that folder; macOS's ``__MACOSX/`` entries are
ignored.

An archive is checked before its directory is parsed (the number of entries and the size of
the directory, from its end record) and before any member is read: too many files, a name too
long, two files whose names differ at most in case, an encrypted member or a compression
other than stored or deflate refuse the upload. A member whose stream turns out damaged
(corrupt deflate data, a bad CRC, a truncated archive) raises one of ``DAMAGED`` while it is
read; the CSV reader turns it into a ``LoadError``.
"""

from __future__ import annotations

import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NoReturn

from ...errors import LoadError, LoadProblem
from ._limits import DEFAULT_LIMITS, ReadLimits

__all__ = ["DAMAGED", "Upload", "damage_reason", "open_upload"]

_MAC_RESOURCES = "__MACOSX/"
"""The resource forks macOS adds when it zips a folder; never part of an upload."""

_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
"""The compression methods read: what every zip tool writes by default. Others (bzip2, LZMA)
are decompressed by ``zipfile`` without a bound on the output of one read."""

_DIRECTORY_BYTES_PER_ENTRY = 46 + 1024
"""Bytes a central directory may take per entry: its fixed part and a name and extra field
of reasonable size."""

DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
"""What reading a damaged file or zip member raises."""


def damage_reason(exc: BaseException) -> str:
    """One line saying why a file could not be read."""
    if isinstance(exc, zlib.error):
        return f"the compressed data is damaged ({exc})"
    if isinstance(exc, EOFError):
        return "the compressed data ends early"
    if isinstance(exc, zipfile.BadZipFile):
        return f"the zip member is damaged ({exc})"
    if isinstance(exc, OSError):
        return f"the file cannot be read ({exc.strerror or exc})"
    return str(exc)


class Upload(ABC):
    """The files of one upload, by exact name, with their sizes in bytes, and the limits the
    load reads them within."""

    def __init__(self, location: str, sizes: dict[str, int], limits: ReadLimits) -> None:
        self.location = location
        self.sizes = sizes
        self.limits = limits

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.sizes)

    @abstractmethod
    def open(self, name: str) -> BinaryIO:
        """A binary stream of the file ``name`` (one of ``names``)."""


class _FolderUpload(Upload):
    def __init__(self, folder: Path, limits: ReadLimits) -> None:
        files: dict[str, int] = {}
        for count, path in enumerate(folder.iterdir()):
            if count >= limits.max_members:
                _refuse(folder.name, f"more than {limits.max_members:,} files in the folder")
            if path.is_file():
                files[path.name] = path.stat().st_size
        super().__init__(str(folder), files, limits)
        self._folder = folder

    def open(self, name: str) -> BinaryIO:
        return (self._folder / name).open("rb")


class _ZipUpload(Upload):
    def __init__(self, path: Path, archive: zipfile.ZipFile, limits: ReadLimits) -> None:
        if len(archive.infolist()) > limits.max_members:  # an end record that understated
            _refuse(path.name, f"more than {limits.max_members:,} entries in the archive")
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and not info.filename.startswith(_MAC_RESOURCES)
        ]
        _check_members(path.name, members, limits)
        prefix = _common_folder(members)
        names = [info.filename[len(prefix) :] for info in members]
        _check_unique(path.name, names)
        self._members = dict(zip(names, members, strict=True))
        sizes = {name: info.file_size for name, info in self._members.items() if "/" not in name}
        super().__init__(str(path), sizes, limits)
        self._archive = archive

    def open(self, name: str) -> BinaryIO:
        return self._archive.open(self._members[name])  # type: ignore[return-value]


def _check_directory(path: Path, limits: ReadLimits) -> None:
    """Refuse an archive whose directory lists too many entries, before it is parsed."""
    with path.open("rb") as handle:
        end = zipfile._EndRecData(handle)  # type: ignore[attr-defined]
    if end is None:
        _refuse(path.name, "not a zip archive (no end of central directory record)")
    entries = end[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]
    directory_bytes = end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if entries > limits.max_members:
        _refuse(path.name, f"{entries:,} entries in the archive; at most {limits.max_members:,}")
    if directory_bytes > limits.max_members * _DIRECTORY_BYTES_PER_ENTRY:
        _refuse(path.name, f"the archive's directory is too large ({directory_bytes:,} bytes)")


def _check_members(archive: str, members: list[zipfile.ZipInfo], limits: ReadLimits) -> None:
    for info in members:
        name = info.filename
        if len(name) > limits.max_name_chars:
            _refuse(archive, f"a member name longer than {limits.max_name_chars} characters")
        if info.flag_bits & 0x1:
            _refuse(archive, f"{name} is encrypted")
        if info.compress_type not in _METHODS:
            reason = f"{name} uses compression method {info.compress_type}; only stored or deflate"
            _refuse(archive, reason)


def _check_unique(archive: str, names: list[str]) -> None:
    """Two members of one name (or of names differing only in case) make an upload
    ambiguous: which one is ``users.csv`` would depend on the tool that unpacks it."""
    seen: dict[str, str] = {}
    for name in names:
        folded = name.casefold()
        if folded in seen:
            _refuse(archive, f"two members named {seen[folded]!r} and {name!r}")
        seen[folded] = name


def _common_folder(members: list[zipfile.ZipInfo]) -> str:
    """``folder/`` when every member lies in that one top-level folder, else ``""``."""
    tops = {info.filename.split("/", 1)[0] for info in members}
    if len(tops) == 1 and all("/" in info.filename for info in members):
        return tops.pop() + "/"
    return ""


def _refuse(name: str, reason: str) -> NoReturn:
    problem = LoadProblem("error", name, None, None, None, reason)
    raise LoadError(f"{name}: {reason}", problems=[problem])


@contextmanager
def open_upload(path: Path, limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[Upload]:
    """The upload at ``path``: a folder or a zip archive.

    Raises:
        LoadError: ``path`` is neither, or breaks one of ``limits`` (a structural problem:
            nothing can be loaded).
    """
    path = Path(path)
    if path.is_dir():
        yield _FolderUpload(path, limits)
    elif path.is_file() and zipfile.is_zipfile(path):
        _check_directory(path, limits)
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            _refuse(path.name, damage_reason(exc))
        with archive:
            yield _ZipUpload(path, archive, limits)
    else:
        _refuse(path.name, "not a folder or zip archive")
