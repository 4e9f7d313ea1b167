"""Stable ids: canonical GUIDs derived from where a record came from, never random.

Re-loading the same source gives the same ids, so snapshots of unchanged data are identical
(contract §7). An id is a UUID version 5 under the project's namespace, named by tenant,
source system, canonical table and the record's key in the source.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

__all__ = ["PROJECT_NAMESPACE", "StableIds", "composite_key", "source_system_id", "stable_id"]

PROJECT_NAMESPACE = uuid.UUID("5f0c8a8e-2d3b-5b7e-9a41-6e6475737472")

_NAMESPACE_BYTES = PROJECT_NAMESPACE.bytes
_SEPARATOR = "\x1f"
_VERSION_5 = (0xF000 << 64, 0x5000 << 64)
_VARIANT_RFC_4122 = (0xC000 << 48, 0x8000 << 48)


def _escape(part: str) -> str:
    if "\\" in part or _SEPARATOR in part:
        return part.replace("\\", "\\\\").replace(_SEPARATOR, "\\u")
    return part


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(PROJECT_NAMESPACE, name))``, without the UUID objects (loads mint many)."""
    value = int.from_bytes(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16], "big")
    value = value & ~_VERSION_5[0] | _VERSION_5[1]
    value = value & ~_VARIANT_RFC_4122[0] | _VARIANT_RFC_4122[1]
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def composite_key(*parts: str) -> str:
    """One source key from several parts, unambiguous even when a part holds the separator."""
    return _SEPARATOR.join(_escape(part) for part in parts)


def stable_id(tenant_id: str, source_system: str, table: str, source_key: str) -> str:
    """The canonical GUID of a record: the same inputs give the same id on every load."""
    return _uuid5(composite_key(tenant_id, source_system, table, source_key))


def source_system_id(tenant_id: str, source_system: str) -> str:
    """The id of the SourceSystem row that a tenant's loads from ``source_system`` share."""
    return stable_id(tenant_id, source_system, "SourceSystem", source_system)


@dataclass(frozen=True)
class StableIds:
    """``stable_id`` bound to one tenant and source system, for loaders minting many ids."""

    tenant_id: str
    source_system: str
    _prefix: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_prefix", composite_key(self.tenant_id, self.source_system) + _SEPARATOR
        )

    def __call__(self, table: str, source_key: str) -> str:
        return _uuid5(self._prefix + _escape(table) + _SEPARATOR + _escape(source_key))
