"""Bearer-token validation with PyJWT, against the development keys or an issuer's JWKS."""

from __future__ import annotations

import uuid

import jwt

from ..errors import Unauthenticated
from .keys import DevelopmentKeys
from .principal import Principal

__all__ = ["TokenValidator"]

_REQUIRED_CLAIMS = ["exp", "iss", "aud", "tid", "oid"]


class TokenValidator:
    """Checks signature, issuer, audience, expiry and not-before; yields the Principal."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        development_keys: DevelopmentKeys | None = None,
        jwks_url: str | None = None,
    ) -> None:
        if (development_keys is None) == (jwks_url is None):
            raise ValueError("give exactly one of development_keys and jwks_url")
        self.issuer = issuer
        self.audience = audience
        self._development_keys = development_keys
        self._jwks_client = jwt.PyJWKClient(jwks_url) if jwks_url else None

    def _signing_key(self, token: str) -> object:
        if self._development_keys is not None:
            return self._development_keys.public_key
        assert self._jwks_client is not None
        return self._jwks_client.get_signing_key_from_jwt(token).key

    def validate(self, token: str) -> Principal:
        """The caller behind ``token``; Unauthenticated for anything invalid."""
        try:
            claims = jwt.decode(
                token,
                self._signing_key(token),
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": _REQUIRED_CLAIMS},
                leeway=30,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The access token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"The access token is invalid: {exc}") from exc
        tenant_id, object_id = claims["tid"], claims["oid"]
        if not (_is_guid(tenant_id) and _is_guid(object_id)):
            raise Unauthenticated("The access token's tid and oid must be GUIDs.")
        scopes = claims.get("scp", "")
        roles = claims.get("roles", [])
        if not isinstance(scopes, str) or not isinstance(roles, list):
            raise Unauthenticated("The access token's scp or roles claim is malformed.")
        return Principal(
            tenant_id=tenant_id.lower(),
            object_id=object_id.lower(),
            scopes=frozenset(scopes.split()),
            roles=frozenset(role for role in roles if isinstance(role, str)),
        )


def _is_guid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
