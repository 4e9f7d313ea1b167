"""Bearer tokens: the development provider's tokens validate; anything else is 401 (§8)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from industrydata.errors import AccessDenied, Unauthenticated
from industrydata.identity import (
    DevelopmentKeys,
    Permission,
    Principal,
    TokenValidator,
    is_delegated,
    mint_token,
)

TENANT = "0f5e6d7c-8b9a-4a1b-9c2d-3e4f5a6b7c8d"
USER = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


@pytest.fixture
def keys(tmp_path: Path) -> DevelopmentKeys:
    return DevelopmentKeys(tmp_path)


@pytest.fixture
def validator(keys: DevelopmentKeys) -> TokenValidator:
    return TokenValidator(issuer="iss-test", audience="aud-test", development_keys=keys)


def _mint(keys: DevelopmentKeys, **overrides: object) -> str:
    arguments: dict = {
        "issuer": "iss-test",
        "audience": "aud-test",
        "tenant_id": TENANT,
        "object_id": USER,
    }
    arguments.update(overrides)
    return mint_token(keys, **arguments)


def test_keys_are_created_once_and_kept_private(tmp_path: Path) -> None:
    first = DevelopmentKeys(tmp_path)
    second = DevelopmentKeys(tmp_path)

    assert first.kid == second.kid
    assert first.path.stat().st_mode & 0o077 == 0
    assert first.jwks()["keys"][0]["kid"] == first.kid
    assert "d" not in first.jwks()["keys"][0]


def test_validate_delegated_token_defaults(
    keys: DevelopmentKeys, validator: TokenValidator
) -> None:
    principal = validator.validate(_mint(keys))

    assert principal == Principal(
        tenant_id=TENANT,
        object_id=USER,
        scopes=frozenset(
            {
                "IndustryData-OutboundFlow.ReadWrite.All",
                "IndustryData-Run.Read.All",
                "IndustryData-Run.Start",
            }
        ),
    )
    assert not principal.is_application


def test_validate_application_token_roles(keys: DevelopmentKeys, validator: TokenValidator) -> None:
    principal = validator.validate(_mint(keys, roles=["IndustryData-Run.Read.All"]))

    assert principal.roles == frozenset({"IndustryData-Run.Read.All"})
    assert principal.scopes == frozenset()
    assert principal.is_application


@pytest.mark.parametrize(
    ("scopes", "roles", "delegated"),
    [
        (None, None, True),
        ([], None, True),
        (["User.Read"], None, True),
        (["User.Read"], ["IndustryData-Run.Read.All"], True),
        (None, ["IndustryData-Run.Read.All"], False),
        ([], ["IndustryData-Run.Read.All"], False),
    ],
)
def test_is_delegated_says_what_the_validator_will_see(
    keys: DevelopmentKeys,
    validator: TokenValidator,
    scopes: list[str] | None,
    roles: list[str] | None,
    delegated: bool,
) -> None:
    principal = validator.validate(_mint(keys, scopes=scopes, roles=roles))

    assert is_delegated(scopes, roles) is delegated
    assert principal.is_application is not delegated


@pytest.mark.parametrize(
    "overrides",
    [
        {"issuer": "someone-else"},
        {"audience": "another-api"},
        {"lifetime_seconds": -120},
        {"tenant_id": "not-a-guid"},
        {"object_id": "not-a-guid"},
    ],
)
def test_validate_rejects_wrong_claims(
    keys: DevelopmentKeys, validator: TokenValidator, overrides: dict
) -> None:
    with pytest.raises(Unauthenticated):
        validator.validate(_mint(keys, **overrides))


def test_validate_rejects_other_signer_and_alg_none(
    tmp_path: Path, validator: TokenValidator
) -> None:
    other = DevelopmentKeys(tmp_path / "other")
    with pytest.raises(Unauthenticated):
        validator.validate(_mint(other))
    now = int(time.time())
    unsigned = jwt.encode(
        {"iss": "iss-test", "aud": "aud-test", "tid": TENANT, "oid": USER, "exp": now + 60},
        key=None,
        algorithm="none",
    )
    with pytest.raises(Unauthenticated):
        validator.validate(unsigned)


def test_validate_requires_tenant_and_object_claims(
    keys: DevelopmentKeys, validator: TokenValidator
) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"iss": "iss-test", "aud": "aud-test", "exp": now + 60, "oid": USER},
        keys.private_key,
        algorithm="RS256",
    )
    with pytest.raises(Unauthenticated):
        validator.validate(token)


def test_require_any_grants_by_scope_or_role() -> None:
    reader = Principal(TENANT, USER, scopes=frozenset({Permission.FLOW_READ.value}))
    app = Principal(TENANT, USER, roles=frozenset({Permission.RUN_START.value}))

    reader.require_any(Permission.FLOW_READ, Permission.FLOW_READ_WRITE)
    app.require_any(Permission.FLOW_READ_WRITE, Permission.RUN_START)
    with pytest.raises(AccessDenied):
        reader.require_any(Permission.FLOW_READ_WRITE)
