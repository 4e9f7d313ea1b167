"""The hub singleton reports rows per canonical table of the caller's tenant only (row 14)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from industrydata.canonical import CANONICAL_TABLES
from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.service import Service
from tests.factories import TenantUsers, auth, make_tenant


def test_hub_counts_rows_of_the_callers_tenant(
    client: TestClient, service: Service, tenant: TenantUsers, admin: dict[str, str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    generate_sds_csv(tmp_path / "drop", students=30, seed=3)
    report = load_sds_csv(service.store.write_engine, tmp_path / "drop", tenant_id=tenant.tenant_id)

    body = client.get("/beta/industryData", headers=admin).json()

    assert body["@odata.type"] == "#microsoft.graph.industryData.industryDataRoot"
    assert body["@odata.context"].endswith("/beta/$metadata#industryData")
    assert set(body["statistics"]) == {table.name for table in CANONICAL_TABLES}
    assert body["statistics"]["Person"] == report.rows["Person"] > 30
    other = make_tenant(service)
    empty = client.get(
        "/beta/industryData", headers=auth(service, other.tenant_id, other.admin)
    ).json()
    assert set(empty["statistics"].values()) == {0}


def test_metadata_is_csdl_xml_without_token(client: TestClient) -> None:
    response = client.get("/beta/$metadata")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert b"dataShareOutgoingFlow" in response.content
    assert response.headers["request-id"]


def test_openapi_document_lists_the_operations(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert {"get", "post"} <= set(paths["/beta/industryData/dataShareOutgoingFlows"])
    assert {"get", "patch", "delete"} <= set(
        paths["/beta/industryData/dataShareOutgoingFlows/{flow_id}"]
    )
    assert "post" in paths["/beta/industryData/dataShareOutgoingFlows/{flow_id}/invitation/accept"]


def test_jwks_publishes_the_signing_key(client: TestClient, service: Service) -> None:
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert [key["kid"] for key in keys] == [service.development_keys.kid]
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["issuer"] == service.settings.token_issuer


def test_unexpected_error_is_a_bare_500(
    service: Service, tenant: TenantUsers, admin: dict[str, str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from industrydata import sharing
    from industrydata.api import create_app

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(sharing, "list_flows", broken)
    with TestClient(create_app(service=service), raise_server_exceptions=False) as client:
        response = client.get("/beta/industryData/dataShareOutgoingFlows", headers=admin)

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "generalException"
    assert "secret internal detail" not in response.text
    assert response.headers["request-id"] == response.json()["error"]["innerError"]["request-id"]
