"""Damaged uploads, made byte by byte: zip archives whose members cannot be read back (a corrupt
deflate stream, the encryption flag, an unknown compression method, a wrong CRC-32) and an SDS
lake snapshot whose manifest is nested too deep for a recursive JSON parser."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

_LOCAL_HEADER = b"PK\x03\x04"
_CENTRAL_HEADER = b"PK\x01\x02"
_END_OF_CENTRAL_DIRECTORY = b"PK\x05\x06"
# Offsets inside the local file header and the central directory header (APPNOTE 4.3.7, 4.3.12).
_LOCAL_FLAGS, _LOCAL_METHOD, _LOCAL_CRC = 6, 8, 14
_CENTRAL_FLAGS, _CENTRAL_METHOD, _CENTRAL_CRC = 8, 10, 16
_UNKNOWN_METHOD = 77  # no compression method is registered under this id
_DEFLATE_INVALID_BLOCK = b"\xff" * 16  # BFINAL=1, BTYPE=11: "invalid block type"


def _headers(data: bytearray) -> tuple[list[int], list[int]]:
    """Offsets of the local headers and of the central directory headers, from the directory."""
    end = data.rindex(_END_OF_CENTRAL_DIRECTORY)
    entries, _, directory = struct.unpack_from("<HII", data, end + 10)
    local, central, offset = [], [], directory
    for _ in range(entries):
        assert data[offset : offset + 4] == _CENTRAL_HEADER
        central.append(offset)
        local.append(struct.unpack_from("<I", data, offset + 42)[0])
        names, extra, comment = struct.unpack_from("<HHH", data, offset + 28)
        offset += 46 + names + extra + comment
    assert all(data[at : at + 4] == _LOCAL_HEADER for at in local)
    return local, central


def _corrupt_deflate(data: bytearray, local: list[int], _central: list[int]) -> None:
    for at in local:
        names, extra = struct.unpack_from("<HH", data, at + 26)
        start = at + 30 + names + extra
        data[start : start + len(_DEFLATE_INVALID_BLOCK)] = _DEFLATE_INVALID_BLOCK


def _encrypted(data: bytearray, local: list[int], central: list[int]) -> None:
    for at in local:
        data[at + _LOCAL_FLAGS] |= 0x01
    for at in central:
        data[at + _CENTRAL_FLAGS] |= 0x01


def _unknown_method(data: bytearray, local: list[int], central: list[int]) -> None:
    for at in local:
        struct.pack_into("<H", data, at + _LOCAL_METHOD, _UNKNOWN_METHOD)
    for at in central:
        struct.pack_into("<H", data, at + _CENTRAL_METHOD, _UNKNOWN_METHOD)


def _bad_crc(data: bytearray, local: list[int], central: list[int]) -> None:
    for at in local:
        crc = struct.unpack_from("<I", data, at + _LOCAL_CRC)[0]
        struct.pack_into("<I", data, at + _LOCAL_CRC, crc ^ 0xFFFFFFFF)
    for at in central:
        crc = struct.unpack_from("<I", data, at + _CENTRAL_CRC)[0]
        struct.pack_into("<I", data, at + _CENTRAL_CRC, crc ^ 0xFFFFFFFF)


ZIP_DAMAGES: dict[str, Callable[[bytearray, list[int], list[int]], None]] = {
    "corrupt-deflate": _corrupt_deflate,
    "encrypted": _encrypted,
    "unknown-method": _unknown_method,
    "bad-crc": _bad_crc,
}


def damaged_zip(path: Path, files: dict[str, str], damage: str) -> Path:
    """A deflated zip of ``files`` at ``path``, with ``damage`` (a key of ZIP_DAMAGES) done to
    every member; the archive's directory stays valid, so it is still recognised as a zip."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    data = bytearray(path.read_bytes())
    ZIP_DAMAGES[damage](data, *_headers(data))
    path.write_bytes(bytes(data))
    return path


def deeply_nested_snapshot(folder: Path, depth: int = 100_000) -> Path:
    """An SDS lake snapshot folder whose manifest is ``depth`` nested JSON arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "snapshot.roster.manifest.cdm.json"
    manifest.write_text('{"entities": ' + "[" * depth + "]" * depth + "}", encoding="utf-8")
    return folder
