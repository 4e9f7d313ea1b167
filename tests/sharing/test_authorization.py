"""The one authorization check after token validation: a delegated caller is a Global
Administrator in its token tenant's directory; an application passes on to its roles."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from industrydata.config import Settings
from industrydata.errors import AccessDenied
from industrydata.identity import Permission, Principal
from industrydata.service import Service
from industrydata.sharing import authorize_caller
from tests.factories import TenantUsers, make_tenant, new_guid

SCOPES = frozenset({Permission.FLOW_READ.value})


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    service = Service(settings)
    yield service
    service.store.dispose()


@pytest.fixture
def tenant(service: Service) -> TenantUsers:
    return make_tenant(service)


def delegated(tenant_id: str, object_id: str) -> Principal:
    return Principal(tenant_id=tenant_id, object_id=object_id, scopes=SCOPES)


def test_global_administrator_of_the_tokens_tenant_passes(
    service: Service, tenant: TenantUsers
) -> None:
    authorize_caller(service.store, delegated(tenant.tenant_id, tenant.admin))


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("stranger", "not a user of this tenant's directory"),
        ("user", "does not hold the Global Administrator role"),
        ("other tenant's admin", "not a user of this tenant's directory"),
    ],
)
def test_delegated_caller_who_is_not_an_admin_of_the_tokens_tenant_is_denied(
    service: Service, tenant: TenantUsers, who: str, message: str
) -> None:
    object_id = {
        "stranger": new_guid(),
        "user": tenant.user,
        "other tenant's admin": make_tenant(service).admin,
    }[who]

    with pytest.raises(AccessDenied, match=message):
        authorize_caller(service.store, delegated(tenant.tenant_id, object_id))


def test_delegated_token_without_any_scope_is_still_a_user(
    service: Service, tenant: TenantUsers
) -> None:
    with pytest.raises(AccessDenied):
        authorize_caller(service.store, Principal(tenant_id=tenant.tenant_id, object_id=new_guid()))


def test_application_passes_whatever_its_object_id(service: Service, tenant: TenantUsers) -> None:
    application = Principal(
        tenant_id=tenant.tenant_id,
        object_id=new_guid(),
        roles=frozenset({Permission.FLOW_READ.value}),
    )

    authorize_caller(service.store, application)
