"""Minting the stable ids of one canonical table fast: a load mints millions of them.

``IdMinter(tenant, source_system, table)(*parts)`` equals ``stable_id(tenant, source_system,
table, composite_key(*parts))`` (``canonical/ids.py``; one part is the key itself): the UUID
v5 of the same name under the same namespace. The SHA-1 state after the fixed prefix
(namespace, tenant, source system, table) is computed once and copied for each key, the
escaping of ``composite_key`` is done only for parts that need it, and the UUID text is cut
from the hex digest directly: a third of the time of ``stable_id``.
"""

from __future__ import annotations

import hashlib

from ..ids import PROJECT_NAMESPACE, composite_key

__all__ = ["IdMinter"]

_SEPARATOR = composite_key("", "")
_ESCAPE = composite_key("\\")[0]
_ESCAPED_SEPARATOR = composite_key(_SEPARATOR)
# RFC 4122 variant: the top two bits of the clock_seq_hi byte are 10.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class IdMinter:
    """``stable_id`` of one tenant, source system and table, as a function of the source key."""

    __slots__ = ("_prefix",)

    def __init__(self, tenant_id: str, source_system: str, table: str) -> None:
        name_prefix = composite_key(tenant_id, source_system, table, "")
        self._prefix = hashlib.sha1(PROJECT_NAMESPACE.bytes + name_prefix.encode())

    def __call__(self, *parts: str) -> str:
        for part in parts:
            if _ESCAPE in part or _SEPARATOR in part:
                name = composite_key(composite_key(*parts) if len(parts) > 1 else part)
                break
        else:
            name = _ESCAPED_SEPARATOR.join(parts)
        digest = self._prefix.copy()
        digest.update(name.encode())
        x = digest.hexdigest()
        return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"
