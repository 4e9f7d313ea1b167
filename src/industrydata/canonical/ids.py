"""Stable ids: canonical GUIDs derived from where a record came from, never random.

Re-loading the same source gives the same ids, so snapshots of unchanged data are identical
(contract §7). An id is a UUID version 5 under the project's namespace, named by tenant,
source system, canonical table and the record's key in the source.
"""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["PROJECT_NAMESPACE", "IdMinter", "composite_key", "source_system_id", "stable_id"]

PROJECT_NAMESPACE = uuid.UUID("5f0c8a8e-2d3b-5b7e-9a41-6e6475737472")

_NAMESPACE_BYTES = PROJECT_NAMESPACE.bytes
_SEPARATOR = "\x1f"
_ESCAPE = "\\"
# RFC 4122 variant: the top two bits of the clock_seq_hi byte are 10.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _escape(part: str) -> str:
    if _ESCAPE in part or _SEPARATOR in part:
        return part.replace("\\", "\\\\").replace(_SEPARATOR, "\\u")
    return part


def _uuid5_text(sha1_hex: str) -> str:
    """The UUID v5 text of a name's SHA-1 hex digest (version nibble 5, RFC 4122 variant)."""
    x = sha1_hex
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(PROJECT_NAMESPACE, name))``, without the UUID objects (loads mint many)."""
    return _uuid5_text(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).hexdigest())


def composite_key(*parts: str) -> str:
    """One source key from several parts, unambiguous even when a part holds the separator."""
    return _SEPARATOR.join(_escape(part) for part in parts)


def stable_id(tenant_id: str, source_system: str, table: str, source_key: str) -> str:
    """The canonical GUID of a record: the same inputs give the same id on every load."""
    return _uuid5(composite_key(tenant_id, source_system, table, source_key))


def source_system_id(tenant_id: str, source_system: str) -> str:
    """The id of the SourceSystem row that a tenant's loads from ``source_system`` share."""
    return stable_id(tenant_id, source_system, "SourceSystem", source_system)


_ESCAPED_SEPARATOR = _escape(_SEPARATOR)


class IdMinter:
    """``stable_id`` of one tenant, source system and table, as a function of the source key.

    A load mints millions of ids: the SHA-1 state after the fixed prefix is computed once and
    copied for each key, and the UUID text is cut from the hex digest directly (a third of the
    time of ``stable_id``; equal results).
    """

    __slots__ = ("_prefix",)

    def __init__(self, tenant_id: str, source_system: str, table: str) -> None:
        name_prefix = composite_key(tenant_id, source_system, table, "")
        self._prefix = hashlib.sha1(_NAMESPACE_BYTES + name_prefix.encode())

    def __call__(self, *parts: str) -> str:
        for part in parts:
            if _ESCAPE in part or _SEPARATOR in part:
                name = composite_key(composite_key(*parts) if len(parts) > 1 else part)
                break
        else:
            name = _ESCAPED_SEPARATOR.join(parts)
        digest = self._prefix.copy()
        digest.update(name.encode())
        return _uuid5_text(digest.hexdigest())
