"""Who may act (issue 8 §5): a delegated caller must be a Global Administrator in the directory
of its token's tenant, on every operation, reads included; application tokens act by their
roles; only the invitee, still a Global Administrator and signed in, answers an invitation;
whoever names the invitee may not name themselves."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from industrydata.config import Settings
from industrydata.directory import add_user
from industrydata.service import Service
from tests.api.conftest import FLOWS, accept_body, flow_body, wait_for_run
from tests.factories import TenantUsers, auth, make_tenant, new_guid

# Every operation that takes a token, one of each kind: (method, path, JSON body).
OPERATIONS = [
    ("GET", "/beta/industryData", None),
    ("GET", FLOWS, None),
    ("GET", f"{FLOWS}/getPotentialDataShareInvitees", None),
    ("POST", FLOWS, "new-flow"),
    ("GET", f"{FLOWS}/{{flow}}", None),
    ("PATCH", f"{FLOWS}/{{flow}}", {"displayName": "Taken over"}),
    ("DELETE", f"{FLOWS}/{{flow}}", None),
    ("GET", f"{FLOWS}/{{flow}}/runs", None),
    ("GET", f"{FLOWS}/{{flow}}/runs/{{run}}", None),
    ("POST", f"{FLOWS}/{{flow}}/runs", None),
    ("POST", f"{FLOWS}/{{flow}}/runs/{{run}}/cancel", None),
    ("GET", f"{FLOWS}/{{flow}}/invitation", None),
    ("POST", f"{FLOWS}/{{flow}}/invitation/accept", "accept"),
    ("POST", f"{FLOWS}/{{flow}}/invitation/reject", None),
    ("POST", f"{FLOWS}/{{flow}}/invitation/resend", None),
]

APP_ROLES = [
    "IndustryData-OutboundFlow.ReadWrite.All",
    "IndustryData-Run.Read.All",
    "IndustryData-Run.Start",
]


def _request(
    client: TestClient,
    operation: tuple[str, str, Any],
    *,
    flow_id: str,
    headers: dict[str, str],
    tenant: TenantUsers,
    settings: Settings,
):  # type: ignore[no-untyped-def]
    method, path, body = operation
    if body == "new-flow":
        body = flow_body(tenant, shareName="taken-over")
    elif body == "accept":
        body = accept_body(settings, "taken-over")
    url = path.format(flow=flow_id, run=new_guid())
    return client.request(method, url, json=body, headers=headers)


def _caller(kind: str, service: Service, tenant: TenantUsers) -> dict[str, str]:
    """Headers of a delegated caller of ``tenant`` who is not one of its Global Administrators."""
    if kind == "absent from the directory":
        return auth(service, tenant.tenant_id, new_guid())
    if kind == "ordinary directory user":
        return auth(service, tenant.tenant_id, tenant.user)
    other = make_tenant(service)
    return auth(service, tenant.tenant_id, other.admin)  # an admin of another tenant's directory


@pytest.mark.parametrize(
    "kind",
    ["absent from the directory", "ordinary directory user", "admin of another tenant"],
)
def test_delegated_caller_who_is_not_a_tenant_admin_is_refused_everywhere(
    client: TestClient,
    service: Service,
    settings: Settings,
    tenant: TenantUsers,
    flow: dict[str, Any],
    admin: dict[str, str],
    kind: str,
) -> None:
    headers = _caller(kind, service, tenant)

    for operation in OPERATIONS:
        response = _request(
            client, operation, flow_id=flow["id"], headers=headers, tenant=tenant, settings=settings
        )
        where = f"{operation[0]} {operation[1]}"
        assert response.status_code == 403, where
        error = response.json()["error"]
        assert error["code"] == "accessDenied", where
        assert "Global Administrators may use this API" in error["message"], where

    flows = client.get(FLOWS, headers=admin).json()["value"]
    assert [(item["id"], item["eTag"]) for item in flows] == [(flow["id"], flow["eTag"])]
    assert client.get(f"{FLOWS}/{flow['id']}/invitation", headers=admin).json()["status"] == (
        "pending"
    )
    assert client.get(f"{FLOWS}/{flow['id']}/runs", headers=admin).json()["value"] == []


def test_refusal_says_whether_the_user_is_absent_or_not_an_admin(
    client: TestClient, service: Service, tenant: TenantUsers
) -> None:
    absent = client.get(FLOWS, headers=auth(service, tenant.tenant_id, new_guid()))
    ordinary = client.get(FLOWS, headers=auth(service, tenant.tenant_id, tenant.user))

    assert "not a user of this tenant's directory" in absent.json()["error"]["message"]
    assert "does not hold the Global Administrator role" in ordinary.json()["error"]["message"]


def test_each_request_reads_the_directory_once(
    client: TestClient, service: Service, admin: dict[str, str], flow: dict[str, Any]
) -> None:
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(service.store.engine, "before_cursor_execute", record)
    try:
        assert client.get(f"{FLOWS}/{flow['id']}", headers=admin).status_code == 200
    finally:
        event.remove(service.store.engine, "before_cursor_execute", record)

    assert len([s for s in statements if "directory_user" in s]) == 1


def test_application_token_acts_by_its_roles(
    client: TestClient,
    service: Service,
    settings: Settings,
    tenant: TenantUsers,
    invitee: dict[str, str],
) -> None:
    application = auth(service, tenant.tenant_id, new_guid(), roles=APP_ROLES)

    created = client.post(FLOWS, json=flow_body(tenant), headers=application)
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    assert [item["id"] for item in client.get(FLOWS, headers=application).json()["value"]] == [
        flow_id
    ]
    accepted = client.post(
        f"{FLOWS}/{flow_id}/invitation/accept", json=accept_body(settings), headers=invitee
    )
    assert accepted.status_code == 200, accepted.text
    first = client.get(f"{FLOWS}/{flow_id}/runs", headers=application).json()["value"][0]
    assert wait_for_run(client, flow_id, first["id"], application)["status"] == "completed"
    started = client.post(f"{FLOWS}/{flow_id}/runs", headers=application)
    assert started.status_code == 201, started.text
    wait_for_run(client, flow_id, started.json()["id"], application)

    reader = auth(service, tenant.tenant_id, new_guid(), roles=["IndustryData-Run.Read.All"])
    assert client.get(f"{FLOWS}/{flow_id}/runs", headers=reader).status_code == 200
    assert client.get(FLOWS, headers=reader).status_code == 403


def test_application_token_cannot_answer_an_invitation_even_with_the_invitees_id(
    client: TestClient,
    service: Service,
    settings: Settings,
    tenant: TenantUsers,
    flow: dict[str, Any],
    admin: dict[str, str],
) -> None:
    posing = auth(service, tenant.tenant_id, tenant.second_admin, roles=APP_ROLES)

    for action, body in (("accept", accept_body(settings)), ("reject", None)):
        response = client.post(
            f"{FLOWS}/{flow['id']}/invitation/{action}", json=body, headers=posing
        )
        assert response.status_code == 403, action
    assert client.get(f"{FLOWS}/{flow['id']}/invitation", headers=admin).json()["status"] == (
        "pending"
    )


def test_invitee_who_lost_the_global_administrator_role_cannot_accept(
    client: TestClient,
    service: Service,
    settings: Settings,
    tenant: TenantUsers,
    flow: dict[str, Any],
    admin: dict[str, str],
    invitee: dict[str, str],
) -> None:
    with service.store.writing() as session:
        add_user(
            session,
            tenant_id=tenant.tenant_id,
            object_id=tenant.second_admin,
            display_name="Adam Admin",
            is_global_admin=False,
        )
        session.commit()

    response = client.post(
        f"{FLOWS}/{flow['id']}/invitation/accept", json=accept_body(settings), headers=invitee
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "accessDenied"
    assert client.get(f"{FLOWS}/{flow['id']}/invitation", headers=admin).json()["status"] == (
        "pending"
    )
    assert client.get(f"{FLOWS}/{flow['id']}/runs", headers=admin).json()["value"] == []
    assert not (settings.lake_dir / "export").exists()


def test_caller_may_not_name_themselves_as_invitee_on_create(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str]
) -> None:
    response = client.post(
        FLOWS, json=flow_body(tenant, inviteeUserIds=[tenant.admin]), headers=admin
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["innerError"]["code"], error["target"]) == ("inviteeIsOwner", "inviteeUserIds")
    assert client.get(FLOWS, headers=admin).json()["value"] == []


def test_caller_may_not_name_themselves_as_invitee_on_update(
    client: TestClient, tenant: TenantUsers, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    invitation = client.get(f"{FLOWS}/{flow['id']}/invitation", headers=admin).json()

    response = client.patch(
        f"{FLOWS}/{flow['id']}", json={"inviteeUserIds": [tenant.admin]}, headers=admin
    )

    assert response.status_code == 400
    assert response.json()["error"]["innerError"]["code"] == "inviteeIsOwner"
    after = client.get(f"{FLOWS}/{flow['id']}", headers=admin).json()
    assert (after["inviteeUserIds"], after["eTag"]) == ([tenant.second_admin], flow["eTag"])
    assert client.get(f"{FLOWS}/{flow['id']}/invitation", headers=admin).json() == invitation
