"""Hostile uploads for the importer's limits, each made at a chosen size.

Every drop is what a careless or malicious tenant could hand the importer: a zip bomb of
``x`` lines, a flood of NUL bytes, a field that never ends, a header a million columns wide,
archives with duplicate, encrypted, damaged or oddly compressed members, a lake manifest
nested thousands deep, a users file whose records are all rejected, millions of distinct
valid users (what the reader remembers per key). Tests make them small;
``bench/importer_limits.py`` makes them at the sizes that broke the importer before.

``HOSTILE_DROPS`` maps a name to (format, maker); a maker takes the path to create and a
size (bytes, columns, members or records, as its docstring says) and returns the path to
load.
"""

from __future__ import annotations

import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["HOSTILE_DROPS", "BASE_SDS", "sds_zip"]

BASE_SDS = {
    "orgs.csv": "sourcedId,name,type\ns1,North High,school\n",
    "users.csv": "sourcedId,username\nu1,ann@x.example\n",
    "roles.csv": "userSourcedId,orgSourcedId,role\nu1,s1,student\n",
}
"""A valid SDS v2.1 drop of one school and one student: the hostile part replaces a file."""

_CHUNK = 1 << 20


def sds_zip(
    path: Path, files: dict[str, bytes | Iterator[bytes]], *, method: int = zipfile.ZIP_DEFLATED
) -> Path:
    """A zip of SDS files; a file given as chunks is streamed into the archive."""
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, content in files.items():
            with archive.open(name, "w", force_zip64=True) as member:
                for chunk in [content] if isinstance(content, bytes) else content:
                    member.write(chunk)
    return path


def _repeated(pattern: bytes, size: int) -> Iterator[bytes]:
    """``size`` bytes of ``pattern`` repeated, in chunks of about a MiB."""
    block = pattern * max(1, _CHUNK // len(pattern))
    left = size
    while left > 0:
        yield block[:left]
        left -= len(block)


def _base(overrides: dict[str, bytes | Iterator[bytes]]) -> dict[str, bytes | Iterator[bytes]]:
    return {name: text.encode() for name, text in BASE_SDS.items()} | overrides


def x_lines(path: Path, size: int) -> Path:
    """users.csv = header + ``size`` bytes of ``x\\n``, deflated (50 MB zip to 53 KB)."""
    users = iter([b"sourcedId,username\n", *_repeated(b"x\n", size)])
    return sds_zip(path.with_suffix(".zip"), _base({"users.csv": users}))


def nul_flood(path: Path, size: int) -> Path:
    """users.csv = header + ``size`` NUL bytes without a newline (1 GiB zips to 1 MB)."""
    users = iter([b"sourcedId,username\n", *_repeated(b"\0", size)])
    return sds_zip(path.with_suffix(".zip"), _base({"users.csv": users}))


def endless_field(path: Path, size: int) -> Path:
    """users.csv whose second record opens a quoted field of ``size`` bytes, newlines
    included, that never closes."""
    users = iter([b'sourcedId,username\nu1,"', *_repeated(b"no end in sight\n", size)])
    return sds_zip(path.with_suffix(".zip"), _base({"users.csv": users}))


def wide_header(path: Path, columns: int) -> Path:
    """users.csv with a header of ``columns`` distinct columns (the check was quadratic)."""
    names = ",".join(f"c{n}" for n in range(columns))
    users = f"sourcedId,username,{names}\n".encode()
    return sds_zip(path.with_suffix(".zip"), _base({"users.csv": users}))


def many_members(path: Path, members: int) -> Path:
    """A zip with ``members`` small members besides the SDS files."""
    with zipfile.ZipFile(path.with_suffix(".zip"), "w", zipfile.ZIP_STORED) as archive:
        for name, text in BASE_SDS.items():
            archive.writestr(name, text)
        for n in range(members):
            archive.writestr(f"extra/{n}.csv", b"")
    return path.with_suffix(".zip")


def duplicate_member(path: Path, size: int = 0) -> Path:
    """A zip with two members named users.csv (the second one empties the roster)."""
    target = sds_zip(path.with_suffix(".zip"), _base({}))
    with zipfile.ZipFile(target, "a") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": the point here
        archive.writestr("users.csv", "sourcedId,username\n")
    return target


def case_duplicate_member(path: Path, size: int = 0) -> Path:
    """A zip with users.csv and Users.csv."""
    return sds_zip(path.with_suffix(".zip"), _base({"Users.csv": b"sourcedId,username\n"}))


def encrypted_member(path: Path, size: int = 0) -> Path:
    """A zip whose users.csv has the encrypted flag set."""
    target = sds_zip(path.with_suffix(".zip"), _base({}), method=zipfile.ZIP_STORED)
    _patch_member(target, "users.csv", flags=0x1)
    return target


def unknown_method(path: Path, size: int = 0) -> Path:
    """A zip whose users.csv claims compression method 99 (AE-x, not readable here)."""
    target = sds_zip(path.with_suffix(".zip"), _base({}), method=zipfile.ZIP_STORED)
    _patch_member(target, "users.csv", method=99)
    return target


def bad_crc(path: Path, size: int = 0) -> Path:
    """A zip whose users.csv holds other bytes than its CRC-32 says."""
    target = sds_zip(path.with_suffix(".zip"), _base({}), method=zipfile.ZIP_STORED)
    data = bytearray(target.read_bytes())
    at = data.index(b"ann@x.example")
    data[at] = ord("b")
    target.write_bytes(bytes(data))
    return target


def corrupt_deflate(path: Path, size: int) -> Path:
    """A zip whose deflated users.csv (``size`` bytes of records) has garbage in the middle
    of its compressed stream."""
    records = b"".join(b"u%d,user%d@x.example\n" % (n, n) for n in range(max(10, size // 24)))
    users = b"sourcedId,username\n" + records
    target = sds_zip(path.with_suffix(".zip"), _base({"users.csv": users}))
    info = zipfile.ZipFile(target).getinfo("users.csv")
    data = bytearray(target.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    middle = start + info.compress_size // 2
    data[middle : middle + 16] = b"\xff" * 16
    target.write_bytes(bytes(data))
    return target


def all_rejected_users(path: Path, records: int) -> Path:
    """A folder drop whose ``records`` users all lack a username (every one is rejected),
    with a role each: loaded as a full upload it would mark the whole roster inactive."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "orgs.csv").write_text(BASE_SDS["orgs.csv"])
    with (path / "users.csv").open("w") as users, (path / "roles.csv").open("w") as roles:
        users.write("sourcedId,username\n")
        roles.write("userSourcedId,orgSourcedId,role\n")
        for n in range(records):
            users.write(f"u{n},\n")
            roles.write(f"u{n},s1,student\n")
    return path


def distinct_valid_users(path: Path, records: int) -> Path:
    """``records`` distinct valid users, each with a role at a school that does not exist:
    the reader must remember every user (duplicates, references) before the roles refuse
    the drop. Deflated: 8 million users (300 MB) zip to about 30 MB."""

    def users() -> Iterator[bytes]:
        yield b"sourcedId,username\n"
        for start in range(0, records, 50_000):
            numbers = range(start, min(records, start + 50_000))
            yield "".join(f"v{n},v{n}@x.example\n" for n in numbers).encode()

    def roles() -> Iterator[bytes]:
        yield b"userSourcedId,orgSourcedId,role\n"
        for start in range(0, records, 50_000):
            numbers = range(start, min(records, start + 50_000))
            yield "".join(f"v{n},nowhere,student\n" for n in numbers).encode()

    return sds_zip(path, _base({"users.csv": users(), "roles.csv": roles()}))


def deep_manifest(path: Path, depth: int) -> Path:
    """An SDS lake snapshot folder whose manifest nests ``depth`` arrays in an entity."""
    folder = path / "roster" / "2021-09-05T06-16-22"
    folder.mkdir(parents=True)
    nested = "[" * depth + "]" * depth
    text = '{"entities": [{"entityName": "Person", "dataPartitions": ' + nested + "}]}"
    (folder / "snapshot.roster.manifest.cdm.json").write_text(text)
    return folder


def _patch_member(archive: Path, name: str, *, method: int | None = None, flags: int = 0) -> None:
    """Set the compression method of member ``name`` and or its flag bits ``flags``, in its
    local header and its central directory entry."""
    info = zipfile.ZipFile(archive).getinfo(name)
    data = bytearray(archive.read_bytes())
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    local = info.header_offset
    for flag_at, method_at in ((local + 6, local + 8), (central + 8, central + 10)):
        struct.pack_into("<H", data, flag_at, struct.unpack_from("<H", data, flag_at)[0] | flags)
        if method is not None:
            struct.pack_into("<H", data, method_at, method)
    archive.write_bytes(bytes(data))


HOSTILE_DROPS: dict[str, tuple[str, Callable[[Path, int], Path], int]] = {
    "x-lines zip bomb": ("sds-csv", x_lines, 50_000_000),
    "NUL flood": ("sds-csv", nul_flood, 1 << 30),
    "endless quoted field": ("sds-csv", endless_field, 200_000_000),
    "1M-column header": ("sds-csv", wide_header, 1_000_000),
    "100k zip members": ("sds-csv", many_members, 100_000),
    "duplicate member": ("sds-csv", duplicate_member, 0),
    "case-duplicate member": ("sds-csv", case_duplicate_member, 0),
    "encrypted member": ("sds-csv", encrypted_member, 0),
    "unknown compression": ("sds-csv", unknown_method, 0),
    "bad CRC": ("sds-csv", bad_crc, 0),
    "corrupt deflate": ("sds-csv", corrupt_deflate, 1_000_000),
    "all users rejected": ("sds-csv", all_rejected_users, 50_028),
    "8M distinct valid users": ("sds-csv", distinct_valid_users, 8_000_000),
    "deep lake manifest": ("sds-lake", deep_manifest, 100_000),
}
"""Name → (loader, maker, full size): the sizes that broke the importer before."""
