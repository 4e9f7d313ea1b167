"""Answering an invitation: the invitee, signed in, and still a Global Administrator at the
moment of the answer (checked by the sharing domain itself, not only by the API's gate)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from industrydata.config import Settings
from industrydata.directory import add_user
from industrydata.errors import AccessDenied
from industrydata.identity import DEFAULT_DELEGATED_SCOPES, Principal
from industrydata.service import Service
from industrydata.sharing import (
    accept_invitation,
    create_flow,
    get_invitation,
    parse_accept,
    parse_flow_create,
    reject_invitation,
)
from industrydata.store import Flow
from tests.factories import TenantUsers, make_tenant


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    service = Service(settings)
    yield service
    service.store.dispose()


@pytest.fixture
def tenant(service: Service) -> TenantUsers:
    return make_tenant(service)


def signed_in(tenant_id: str, object_id: str) -> Principal:
    return Principal(
        tenant_id=tenant_id, object_id=object_id, scopes=frozenset(DEFAULT_DELEGATED_SCOPES)
    )


@pytest.fixture
def flow(service: Service, settings: Settings, tenant: TenantUsers) -> Flow:
    request = parse_flow_create(
        {"displayName": "Roster", "shareName": "roster", "inviteeUserIds": [tenant.second_admin]}
    )
    return create_flow(
        service.store,
        principal=signed_in(tenant.tenant_id, tenant.admin),
        request=request,
        settings=settings,
    )


def _revoke_global_administrator(service: Service, tenant: TenantUsers) -> None:
    with service.store.writing() as session:
        add_user(
            session,
            tenant_id=tenant.tenant_id,
            object_id=tenant.second_admin,
            display_name="Adam Admin",
            is_global_admin=False,
        )
        session.commit()


def test_invitee_who_lost_the_role_cannot_accept(
    service: Service, settings: Settings, tenant: TenantUsers, flow: Flow
) -> None:
    _revoke_global_administrator(service, tenant)
    invitee = signed_in(tenant.tenant_id, tenant.second_admin)
    request = parse_accept({"destination": {"url": (settings.lake_dir / "x").as_uri()}})

    with pytest.raises(AccessDenied, match="no longer holds the Global Administrator role"):
        accept_invitation(
            service.store,
            principal=invitee,
            flow_id=flow.id,
            request=request,
            settings=settings,
            sealer=service.sealer,
        )

    assert get_invitation(service.store, principal=invitee, flow_id=flow.id).status == "pending"
    assert not (settings.lake_dir / "x").exists()


def test_invitee_who_lost_the_role_cannot_reject(
    service: Service, tenant: TenantUsers, flow: Flow
) -> None:
    _revoke_global_administrator(service, tenant)
    invitee = signed_in(tenant.tenant_id, tenant.second_admin)

    with pytest.raises(AccessDenied):
        reject_invitation(service.store, principal=invitee, flow_id=flow.id)

    assert get_invitation(service.store, principal=invitee, flow_id=flow.id).status == "pending"


def test_application_with_the_invitees_object_id_cannot_answer(
    service: Service, tenant: TenantUsers, flow: Flow
) -> None:
    posing = Principal(
        tenant_id=tenant.tenant_id,
        object_id=tenant.second_admin,
        roles=frozenset(DEFAULT_DELEGATED_SCOPES),
    )

    with pytest.raises(AccessDenied, match="signed in"):
        reject_invitation(service.store, principal=posing, flow_id=flow.id)


@pytest.mark.parametrize("deletion_vectors", [True, False, None])
def test_accept_keeps_the_flows_delta_options_with_the_invitation(
    service: Service,
    settings: Settings,
    tenant: TenantUsers,
    flow: Flow,
    deletion_vectors: bool | None,
) -> None:
    invitee = signed_in(tenant.tenant_id, tenant.second_admin)
    destination: dict[str, object] = {"url": (settings.lake_dir / "x").as_uri(), "format": "delta"}
    if deletion_vectors is not None:
        destination["deltaOptions"] = {"deletionVectors": deletion_vectors}

    accept_invitation(
        service.store,
        principal=invitee,
        flow_id=flow.id,
        request=parse_accept({"destination": destination}),
        settings=settings,
        sealer=service.sealer,
    )

    invitation = get_invitation(service.store, principal=invitee, flow_id=flow.id)
    assert invitation.delta_deletion_vectors is deletion_vectors
    for server_default in (True, False):
        expected = server_default if deletion_vectors is None else deletion_vectors
        assert invitation.deletion_vectors(server_default) is expected
