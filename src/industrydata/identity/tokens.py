"""Minting tokens with the development identity provider (for `industrydata token` and tests)."""

from __future__ import annotations

import time
import uuid

import jwt

from .keys import DevelopmentKeys
from .principal import Permission

__all__ = ["DEFAULT_DELEGATED_SCOPES", "is_delegated", "mint_token"]

DEFAULT_DELEGATED_SCOPES: tuple[str, ...] = (
    Permission.FLOW_READ_WRITE.value,
    Permission.RUN_READ.value,
    Permission.RUN_START.value,
)


def is_delegated(
    scopes: list[str] | tuple[str, ...] | None, roles: list[str] | tuple[str, ...] | None
) -> bool:
    """Whether ``mint_token`` gives these arguments a delegated token (an ``scp`` claim).

    A delegated token acts for a user, whom the API looks up in the tenant's directory; an
    application token (``roles`` only) is authorised by its roles alone.
    """
    return bool(scopes) or not roles


def mint_token(
    keys: DevelopmentKeys,
    *,
    issuer: str,
    audience: str,
    tenant_id: str,
    object_id: str,
    scopes: list[str] | tuple[str, ...] | None = None,
    roles: list[str] | tuple[str, ...] | None = None,
    lifetime_seconds: int = 3600,
) -> str:
    """A signed JWT: delegated (``scp``) when ``scopes`` are given, application (``roles``) else."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "tid": tenant_id,
        "oid": object_id,
        "sub": object_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_seconds,
        "jti": str(uuid.uuid4()),
    }
    if roles:
        claims["roles"] = list(roles)
    if is_delegated(scopes, roles):
        claims["scp"] = " ".join(scopes if scopes is not None else DEFAULT_DELEGATED_SCOPES)
    return jwt.encode(claims, keys.private_key, algorithm="RS256", headers={"kid": keys.kid})
