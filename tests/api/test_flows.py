"""The flow entity set: create, read, update, delete and potential invitees (contract §3, §4).

Every write changes the eTag; a caller sees only its own tenant's flows.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from industrydata.service import Service
from tests.api.conftest import FLOWS, flow_body
from tests.factories import TenantUsers, auth, make_tenant, new_guid


def test_create_flow_returns_entity_location_and_etag(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str]
) -> None:
    response = client.post(FLOWS, json=flow_body(tenant), headers=admin)

    assert response.status_code == 201
    body = response.json()
    assert body["@odata.type"] == "#microsoft.graph.industryData.dataShareOutgoingFlow"
    assert body["@odata.context"].endswith(
        "/beta/$metadata#industryData/dataShareOutgoingFlows/$entity"
    )
    assert body["displayName"] == "Roster to the district lake"
    assert body["shareName"] == "district-lake"
    assert body["inviteeUserIds"] == [tenant.second_admin]
    assert body["readinessStatus"] == "notReady"
    assert body["sharingState"] == "pending"
    assert response.headers["Location"] == f"http://testserver{FLOWS}/{body['id']}"
    assert response.headers["ETag"] == f'"{body["eTag"]}"'
    assert response.headers["request-id"]


def test_create_flow_ignores_well_typed_server_managed_properties(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str]
) -> None:
    body = flow_body(
        tenant, eTag="whatever", readinessStatus="ready", sharingState="running", id="x"
    )

    response = client.post(FLOWS, json=body, headers=admin)

    assert response.status_code == 201
    assert response.json()["readinessStatus"] == "notReady"
    assert response.json()["eTag"] != "whatever"


def test_create_flow_accepts_each_draft_type_spelling(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str]
) -> None:
    for index, odata_type in enumerate(
        ["#microsoft.graph.dataShareOutgoingFlow", "#microsoft.industryData.dataShareOutgoingFlow"]
    ):
        body = flow_body(tenant, shareName=f"share-{index}")
        body["@odata.type"] = odata_type
        assert client.post(FLOWS, json=body, headers=admin).status_code == 201
    body = flow_body(tenant, shareName="untyped")
    del body["@odata.type"]
    assert client.post(FLOWS, json=body, headers=admin).status_code == 201


def test_get_flow_returns_entity_at_top_level(
    client: TestClient, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    response = client.get(f"{FLOWS}/{flow['id']}", headers=admin)

    assert response.status_code == 200
    body = response.json()
    assert "value" not in body
    assert body["id"] == flow["id"]
    assert response.headers["ETag"] == f'"{flow["eTag"]}"'


def test_get_flow_expands_invitation_and_runs(
    client: TestClient, flow: dict[str, Any], admin: dict[str, str], tenant: TenantUsers
) -> None:
    body = client.get(f"{FLOWS}/{flow['id']}?$expand=invitation,runs", headers=admin).json()

    assert body["runs"] == []
    assert body["invitation"]["status"] == "pending"
    assert body["invitation"]["inviteeUserId"] == tenant.second_admin
    assert "invitation" not in client.get(f"{FLOWS}/{flow['id']}", headers=admin).json()


def test_list_flows_pages_and_counts(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str]
) -> None:
    for index in range(5):
        client.post(
            FLOWS,
            json=flow_body(tenant, shareName=f"s{index}x", displayName=f"F{index}"),
            headers=admin,
        )

    first = client.get(
        f"{FLOWS}?$top=3&$count=true&$orderby=displayName desc", headers=admin
    ).json()

    assert first["@odata.count"] == 5
    assert [item["displayName"] for item in first["value"]] == ["F4", "F3", "F2"]
    assert "@odata.nextLink" not in first
    filtered = client.get(
        f"{FLOWS}?$filter=startswith(displayName,'F1') or displayName eq 'F3'&$select=displayName",
        headers=admin,
    ).json()
    assert sorted(item["displayName"] for item in filtered["value"]) == ["F1", "F3"]
    assert set(filtered["value"][0]) <= {"@odata.type", "id", "displayName"}


def test_list_flows_follows_next_link_to_the_end(
    client: TestClient, service: Service, tenant: TenantUsers, admin: dict[str, str]
) -> None:
    service.settings.page_size = 2
    for index in range(5):
        client.post(FLOWS, json=flow_body(tenant, shareName=f"page{index}"), headers=admin)

    seen, url = [], f"{FLOWS}?$orderby=shareName"
    while url:
        page = client.get(url, headers=admin).json()
        seen += [item["shareName"] for item in page["value"]]
        url = page.get("@odata.nextLink")

    assert seen == [f"page{index}" for index in range(5)]


def test_list_flows_filters_by_invitee(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str], flow: dict[str, Any]
) -> None:
    url = f"{FLOWS}?$filter=inviteeUserIds/any(u: u eq '{tenant.second_admin}')"
    assert [item["id"] for item in client.get(url, headers=admin).json()["value"]] == [flow["id"]]
    url = f"{FLOWS}?$filter=inviteeUserIds/any(u: u eq '{tenant.admin}')"
    assert client.get(url, headers=admin).json()["value"] == []


def test_update_flow_changes_name_and_etag(
    client: TestClient, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    response = client.patch(
        f"{FLOWS}/{flow['id']}",
        json={"displayName": "  Renamed  "},
        headers={**admin, "If-Match": f'W/"{flow["eTag"]}"'},
    )

    assert response.status_code == 200
    assert response.json()["displayName"] == "Renamed"
    assert response.json()["eTag"] != flow["eTag"]


def test_update_flow_prefer_minimal_returns_204(
    client: TestClient, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    response = client.patch(
        f"{FLOWS}/{flow['id']}",
        json={"displayName": "Quiet"},
        headers={**admin, "Prefer": "return=minimal"},
    )

    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"{FLOWS}/{flow['id']}", headers=admin).json()["displayName"] == "Quiet"


def test_update_flow_new_invitee_revokes_invitation(
    client: TestClient,
    flow: dict[str, Any],
    admin: dict[str, str],
    invitee: dict[str, str],
    tenant: TenantUsers,
) -> None:
    old = client.get(f"{FLOWS}/{flow['id']}/invitation", headers=admin).json()

    response = client.patch(
        f"{FLOWS}/{flow['id']}", json={"inviteeUserIds": [tenant.admin]}, headers=invitee
    )

    assert response.status_code == 200
    new = client.get(f"{FLOWS}/{flow['id']}/invitation", headers=admin).json()
    assert new["id"] != old["id"]
    assert new["status"] == "pending"
    assert new["inviteeUserId"] == tenant.admin
    assert response.json()["readinessStatus"] == "notReady"


def test_delete_flow_then_it_is_gone(
    client: TestClient, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    assert client.delete(f"{FLOWS}/{flow['id']}", headers=admin).status_code == 204
    assert client.get(f"{FLOWS}/{flow['id']}", headers=admin).status_code == 404


def test_delete_flow_with_star_if_match(
    client: TestClient, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    response = client.delete(f"{FLOWS}/{flow['id']}", headers={**admin, "If-Match": "*"})
    assert response.status_code == 204


def test_potential_invitees_lists_global_administrators_by_name(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str]
) -> None:
    for path in ("getPotentialDataShareInvitees", "getPotentialDataShareInvitees()"):
        response = client.get(f"{FLOWS}/{path}", headers=admin)
        assert response.status_code == 200
        assert response.json()["value"] == [
            {
                "@odata.type": "#microsoft.graph.identity",
                "id": tenant.second_admin,
                "displayName": "Adam Admin",
            },
            {
                "@odata.type": "#microsoft.graph.identity",
                "id": tenant.admin,
                "displayName": "Zoe Admin",
            },
        ]


def test_flows_of_another_tenant_are_invisible(
    client: TestClient, service: Service, flow: dict[str, Any]
) -> None:
    other = make_tenant(service)
    headers = auth(service, other.tenant_id, other.admin)

    assert client.get(FLOWS, headers=headers).json()["value"] == []
    for method in ("get", "delete"):
        assert getattr(client, method)(f"{FLOWS}/{flow['id']}", headers=headers).status_code == 404
    assert (
        client.patch(
            f"{FLOWS}/{flow['id']}", json={"displayName": "x"}, headers=headers
        ).status_code
        == 404
    )
    assert client.get(f"{FLOWS}/{flow['id']}/runs", headers=headers).status_code == 404


def test_read_only_scope_can_read_but_not_write(
    client: TestClient, service: Service, tenant: TenantUsers, flow: dict[str, Any]
) -> None:
    reader = auth(
        service, tenant.tenant_id, tenant.admin, scopes=["IndustryData-OutboundFlow.Read.All"]
    )

    assert client.get(FLOWS, headers=reader).status_code == 200
    assert (
        client.post(FLOWS, json=flow_body(tenant, shareName="nope"), headers=reader).status_code
        == 403
    )


def test_application_token_with_role_can_write(
    client: TestClient, service: Service, tenant: TenantUsers
) -> None:
    app_headers = auth(
        service, tenant.tenant_id, new_guid(), roles=["IndustryData-OutboundFlow.ReadWrite.All"]
    )
    assert client.post(FLOWS, json=flow_body(tenant), headers=app_headers).status_code == 201
