"""Delta deletion vectors: which rows of a data file are deleted, without rewriting it.

The format is the Delta protocol's ("Deletion Vector Format" and "Deletion Vector File
Storage Format"): a deletion vector is a 64-bit roaring bitmap of row positions (the
``RoaringBitmapArray`` payload: a little-endian magic number, then the portable 64-bit
serialisation, which pyroaring's ``BitMap64.serialize`` produces byte for byte). A run
writes the vectors of all the data files it touches into one file,
``deletion_vector_<uuid>.bin`` at the table's root: a version byte, then per vector its
size (big-endian int32), the payload and its CRC-32 (big-endian). The log names a vector by
a descriptor: storage type ``u``, the Z85-encoded uuid (``pathOrInlineDv``), the offset of
its size field, its payload size and its cardinality. Vectors written by other writers
(inline ``i`` ones, or ``u`` ones with a random path prefix) are read too.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from pyroaring import BitMap64

__all__ = ["DeletionVectorFile", "deletion_vector_path", "descriptor_key", "read_deletion_vector"]

_MAGIC = 1681511377
_FORMAT_VERSION = 1
_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_Z85_VALUES = {character: value for value, character in enumerate(_Z85)}
_UUID_CHARACTERS = 20


@dataclass
class DeletionVectorFile:
    """The deletion vectors of one commit, gathered into one file."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    _content: bytearray = field(default_factory=lambda: bytearray([_FORMAT_VERSION]))

    @property
    def name(self) -> str:
        return f"deletion_vector_{self.id}.bin"

    @property
    def content(self) -> bytes:
        return bytes(self._content)

    def add(self, positions: BitMap64) -> dict[str, object]:
        """Append the vector deleting ``positions``; return its log descriptor."""
        payload = struct.pack("<I", _MAGIC) + positions.serialize()
        offset = len(self._content)
        self._content += struct.pack(">i", len(payload)) + payload
        self._content += struct.pack(">I", zlib.crc32(payload))
        return {
            "storageType": "u",
            "pathOrInlineDv": _z85_encode(self.id.bytes),
            "offset": offset,
            "sizeInBytes": len(payload),
            "cardinality": len(positions),
        }


def descriptor_key(descriptor: dict[str, object] | None) -> str | None:
    """What tells two vectors of one data file apart (the protocol's ``uniqueId``)."""
    if not descriptor:
        return None
    offset = descriptor.get("offset")
    key = f"{descriptor['storageType']}{descriptor['pathOrInlineDv']}"
    return key if offset is None else f"{key}@{offset}"


def deletion_vector_path(descriptor: dict[str, object]) -> str | None:
    """The table-relative path of the file holding a vector; None for an inline one.

    Raises:
        ValueError: the vector is stored by absolute path, which this writer does not read.
    """
    storage = descriptor["storageType"]
    if storage == "i":
        return None
    if storage != "u":
        raise ValueError(f"deletion vectors stored as {storage!r} are not supported")
    where = str(descriptor["pathOrInlineDv"])
    prefix, encoded = where[:-_UUID_CHARACTERS], where[-_UUID_CHARACTERS:]
    name = f"deletion_vector_{uuid.UUID(bytes=_z85_decode(encoded))}.bin"
    return f"{prefix}/{name}" if prefix else name


def read_deletion_vector(
    descriptor: dict[str, object], read_object: Callable[[str], bytes]
) -> BitMap64:
    """The positions a descriptor deletes; ``read_object`` reads a table-relative path.

    Raises:
        ValueError: the vector is stored in a way this writer does not read (an absolute
            path), or its bytes are not what the descriptor says.
    """
    size = int(str(descriptor["sizeInBytes"]))
    path = deletion_vector_path(descriptor)
    if path is None:
        payload = _z85_decode(str(descriptor["pathOrInlineDv"]))[:size]
    else:
        content = read_object(path)
        offset = int(str(descriptor.get("offset") or 0))
        (stored_size,) = struct.unpack_from(">i", content, offset)
        payload = content[offset + 4 : offset + 4 + stored_size]
        (checksum,) = struct.unpack_from(">I", content, offset + 4 + stored_size)
        if stored_size != size or zlib.crc32(payload) != checksum:
            raise ValueError(f"the deletion vector in {path} does not match its descriptor")
    (magic,) = struct.unpack_from("<I", payload)
    if magic != _MAGIC:
        raise ValueError("not a deletion vector (wrong magic number)")
    return BitMap64.deserialize(payload[4:])


def _z85_encode(data: bytes) -> str:
    characters = []
    for start in range(0, len(data), 4):
        value = int.from_bytes(data[start : start + 4], "big")
        group = []
        for _ in range(5):
            value, digit = divmod(value, 85)
            group.append(_Z85[digit])
        characters.extend(reversed(group))
    return "".join(characters)


def _z85_decode(text: str) -> bytes:
    data = bytearray()
    for start in range(0, len(text), 5):
        value = 0
        for character in text[start : start + 5]:
            value = value * 85 + _Z85_VALUES[character]
        data += value.to_bytes(4, "big")
    return bytes(data)
