"""Deletion vectors are written in the Delta protocol's format and read back, whoever wrote
them: the file framing (version byte, big-endian size, payload, CRC-32), the roaring bitmap
payload, Z85 uuids and inline vectors."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from pyroaring import BitMap64

from industrydata.lake._deletion_vectors import (
    DeletionVectorFile,
    _z85_decode,
    _z85_encode,
    descriptor_key,
    read_deletion_vector,
)


def test_z85_matches_the_specification_example() -> None:
    data = bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])

    assert _z85_encode(data) == "HelloWorld"
    assert _z85_decode("HelloWorld") == data


def test_vectors_in_one_file_read_back_at_their_offsets() -> None:
    file = DeletionVectorFile()
    first = file.add(BitMap64([0, 2, 70_000]))
    second = file.add(BitMap64([5, 2**32 + 1]))
    content = file.content

    def read_object(name: str) -> bytes:
        assert name == file.name
        return content

    assert content[0] == 1
    assert first["offset"] == 1 and second["offset"] == 1 + 4 + first["sizeInBytes"] + 4
    assert (first["cardinality"], second["cardinality"]) == (3, 2)
    assert first["pathOrInlineDv"] == _z85_encode(file.id.bytes)
    assert list(read_deletion_vector(first, read_object)) == [0, 2, 70_000]
    assert list(read_deletion_vector(second, read_object)) == [5, 2**32 + 1]
    (size,) = struct.unpack_from(">i", content, 1)
    payload = content[5 : 5 + size]
    assert struct.unpack_from("<I", payload)[0] == 1681511377
    assert struct.unpack_from(">I", content, 5 + size)[0] == zlib.crc32(payload)


def test_inline_and_prefixed_vectors_of_other_writers_are_read() -> None:
    payload = struct.pack("<I", 1681511377) + BitMap64([3, 4]).serialize()
    padded = payload + b"\0" * (-len(payload) % 4)
    inline = {
        "storageType": "i",
        "pathOrInlineDv": _z85_encode(padded),
        "sizeInBytes": len(payload),
        "cardinality": 2,
    }
    assert list(read_deletion_vector(inline, lambda name: b"")) == [3, 4]

    identifier = uuid.uuid4()
    file = (
        b"\x01" + struct.pack(">i", len(payload)) + payload + struct.pack(">I", zlib.crc32(payload))
    )
    prefixed = {
        "storageType": "u",
        "pathOrInlineDv": "ab" + _z85_encode(identifier.bytes),
        "offset": 1,
        "sizeInBytes": len(payload),
        "cardinality": 2,
    }
    names: list[str] = []
    assert list(read_deletion_vector(prefixed, lambda name: names.append(name) or file)) == [3, 4]
    assert names == [f"ab/deletion_vector_{identifier}.bin"]


def test_damaged_or_absolute_vectors_are_refused() -> None:
    file = DeletionVectorFile()
    descriptor = file.add(BitMap64([1]))
    damaged = bytearray(file.content)
    damaged[-1] ^= 0xFF

    with pytest.raises(ValueError, match="does not match"):
        read_deletion_vector(descriptor, lambda name: bytes(damaged))
    with pytest.raises(ValueError, match="not supported"):
        read_deletion_vector({**descriptor, "storageType": "p"}, lambda name: b"")


def test_descriptor_key_tells_vectors_of_one_file_apart() -> None:
    file = DeletionVectorFile()
    first, second = file.add(BitMap64([1])), file.add(BitMap64([2]))

    assert descriptor_key(None) is None
    assert descriptor_key(first) != descriptor_key(second)
    assert descriptor_key(dict(first)) == descriptor_key(first)
