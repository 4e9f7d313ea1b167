"""The Graph error envelope (contract §9): every error path answers with its status, a body
``{"error": {"code", "message", "target"?, "details"?, "innerError": {"code"?, "date",
"request-id", "client-request-id"?}}}``, the ``request-id`` header, no stack trace, and
changes nothing in the store."""

from __future__ import annotations

import uuid
from datetime import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from industrydata.service import Service
from industrydata.store import Run
from tests.api.conftest import FLOWS, flow_body
from tests.factories import TenantUsers, auth, make_tenant, token


def assert_graph_error(
    response, status: int, code: str, inner_code: str | None = None
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in response.text
    inner = error["innerError"]
    assert inner["request-id"] == response.headers["request-id"]
    datetime.strptime(inner["date"], "%Y-%m-%dT%H:%M:%S")
    if inner_code is not None:
        assert inner["code"] == inner_code
    return error


def everything(client: TestClient, headers: dict[str, str]) -> Any:
    """The caller's whole visible state, to check that a failed request changed nothing."""
    flows = client.get(f"{FLOWS}?$expand=runs,invitation", headers=headers).json()["value"]
    return sorted(flows, key=lambda flow: flow["id"])


@pytest.fixture
def unchanged(client: TestClient, flow: dict[str, Any], admin: dict[str, str]) -> Iterator[None]:
    """Asserts, after the test, that the store looks exactly as before it."""
    state = everything(client, admin)
    yield
    assert everything(client, admin) == state


BAD_FLOW_BODIES = [
    ({"displayName": "x", "shareName": "ok-name"}, "invalidProperty", "inviteeUserIds"),
    ({"shareName": "ok-name", "inviteeUserIds": ["{invitee}"]}, "invalidProperty", "displayName"),
    (
        {"displayName": "   ", "shareName": "ok-name", "inviteeUserIds": ["{invitee}"]},
        "invalidProperty",
        "displayName",
    ),
    (
        {"displayName": "x" * 257, "shareName": "ok-name", "inviteeUserIds": ["{invitee}"]},
        "invalidProperty",
        "displayName",
    ),
    (
        {"displayName": 5, "shareName": "ok-name", "inviteeUserIds": ["{invitee}"]},
        "invalidProperty",
        "displayName",
    ),
    (
        {"displayName": "x", "shareName": "-bad", "inviteeUserIds": ["{invitee}"]},
        "invalidProperty",
        "shareName",
    ),
    (
        {"displayName": "x", "shareName": "a", "inviteeUserIds": ["{invitee}"]},
        "invalidProperty",
        "shareName",
    ),
    (
        {"displayName": "x", "shareName": "has space", "inviteeUserIds": ["{invitee}"]},
        "invalidProperty",
        "shareName",
    ),
    (
        {"displayName": "x", "shareName": "ok-name", "inviteeUserIds": ["{invitee}", "{admin}"]},
        "tooManyInvitees",
        "inviteeUserIds",
    ),
    (
        {"displayName": "x", "shareName": "ok-name", "inviteeUserIds": []},
        "invalidProperty",
        "inviteeUserIds",
    ),
    (
        {"displayName": "x", "shareName": "ok-name", "inviteeUserIds": ["not-a-guid"]},
        "invalidProperty",
        "inviteeUserIds",
    ),
    (
        {"displayName": "x", "shareName": "ok-name", "inviteeUserIds": ["{user}"]},
        "inviteeNotGlobalAdministrator",
        "inviteeUserIds",
    ),
    (
        {"displayName": "x", "shareName": "ok-name", "inviteeUserIds": ["{stranger}"]},
        "inviteeNotGlobalAdministrator",
        "inviteeUserIds",
    ),
    (
        {
            "displayName": "x",
            "shareName": "ok-name",
            "inviteeUserIds": ["{invitee}"],
            "color": "red",
        },
        "invalidProperty",
        "color",
    ),
    (
        {
            "displayName": "x",
            "shareName": "ok-name",
            "inviteeUserIds": ["{invitee}"],
            "readinessStatus": "bogus",
        },
        "invalidEnumValue",
        "readinessStatus",
    ),
    (
        {
            "displayName": "x",
            "shareName": "ok-name",
            "inviteeUserIds": ["{invitee}"],
            "sharingState": 3,
        },
        "invalidProperty",
        "sharingState",
    ),
    (
        {
            "@odata.type": "#microsoft.graph.user",
            "displayName": "x",
            "shareName": "ok-name",
            "inviteeUserIds": ["{invitee}"],
        },
        "invalidProperty",
        "@odata.type",
    ),
]


def _fill(value: Any, tenant: TenantUsers) -> Any:
    names = {
        "invitee": tenant.second_admin,
        "admin": tenant.admin,
        "user": tenant.user,
        "stranger": str(uuid.uuid4()),
    }
    if isinstance(value, str):
        return value.format(**names) if value.startswith("{") else value
    if isinstance(value, list):
        return [_fill(item, tenant) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, tenant) for key, item in value.items()}
    return value


@pytest.mark.parametrize(("body", "inner_code", "target"), BAD_FLOW_BODIES)
def test_create_flow_bad_body_is_400(
    client: TestClient,
    tenant: TenantUsers,
    admin: dict[str, str],
    unchanged: None,
    body: dict,
    inner_code: str,
    target: str,
) -> None:
    error = assert_graph_error(
        client.post(FLOWS, json=_fill(body, tenant), headers=admin), 400, "badRequest", inner_code
    )
    assert error["target"] == target


@pytest.mark.parametrize(("body", "inner_code", "target"), BAD_FLOW_BODIES[2:])
def test_update_flow_bad_body_is_400(
    client: TestClient,
    tenant: TenantUsers,
    admin: dict[str, str],
    flow: dict,
    unchanged: None,
    body: dict,
    inner_code: str,
    target: str,
) -> None:
    response = client.patch(f"{FLOWS}/{flow['id']}", json=_fill(body, tenant), headers=admin)
    assert_graph_error(response, 400, "badRequest", inner_code)


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2]", b'"text"', b"null", b'{"displayName": "\xff"}']
)
def test_create_flow_malformed_json_is_400(
    client: TestClient, admin: dict[str, str], unchanged: None, raw: bytes
) -> None:
    response = client.post(
        FLOWS, content=raw, headers={**admin, "Content-Type": "application/json"}
    )
    assert_graph_error(response, 400, "badRequest")


@pytest.mark.parametrize(
    "query",
    [
        "$filter=nosuch eq 'x'",
        "$filter=displayName eq",
        "$filter=displayName eq 'x' and",
        "$orderby=nosuch",
        "$select=nosuch",
        "$expand=nosuch",
        "$top=1000",
        "$top=-1",
        "$skip=abc",
        "$count=maybe",
        "$top=1&$top=2",
        "$bogus=1",
        "$skiptoken=garbage",
        "$filter=readinessStatus eq 'bogus'",
    ],
)
def test_list_flows_bad_query_is_400(
    client: TestClient, admin: dict[str, str], unchanged: None, query: str
) -> None:
    assert_graph_error(client.get(f"{FLOWS}?{query}", headers=admin), 400, "badRequest")


def test_bad_filter_names_invalid_filter(client: TestClient, admin: dict[str, str]) -> None:
    assert_graph_error(
        client.get(f"{FLOWS}?$filter=nosuch eq 1", headers=admin),
        400,
        "badRequest",
        "invalidFilter",
    )


def test_missing_token_is_401(client: TestClient, unchanged: None) -> None:
    response = client.get(FLOWS)
    assert_graph_error(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Basic abc", "Bearer not.a.jwt", "Bearer a.b.c"])
def test_malformed_token_is_401(client: TestClient, unchanged: None, header: str) -> None:
    assert_graph_error(client.get(FLOWS, headers={"Authorization": header}), 401, "unauthenticated")


def test_expired_token_is_401(
    client: TestClient, service: Service, tenant: TenantUsers, unchanged: None
) -> None:
    expired = token(service, tenant.tenant_id, tenant.admin, lifetime_seconds=-120)
    assert_graph_error(
        client.get(FLOWS, headers={"Authorization": f"Bearer {expired}"}), 401, "unauthenticated"
    )


def test_token_signed_by_another_key_is_401(
    client: TestClient,
    tenant: TenantUsers,
    tmp_path,
    unchanged: None,  # type: ignore[no-untyped-def]
) -> None:
    from industrydata.config import Settings

    foreign = Service(Settings(data_dir=tmp_path / "foreign"))
    try:
        headers = auth(foreign, tenant.tenant_id, tenant.admin)
    finally:
        foreign.close()
    assert_graph_error(client.get(FLOWS, headers=headers), 401, "unauthenticated")


def test_missing_permission_is_403(
    client: TestClient, service: Service, tenant: TenantUsers, unchanged: None
) -> None:
    headers = auth(service, tenant.tenant_id, tenant.admin, scopes=["User.Read"])
    assert_graph_error(client.get(FLOWS, headers=headers), 403, "accessDenied")
    assert_graph_error(
        client.post(FLOWS, json=flow_body(tenant), headers=headers), 403, "accessDenied"
    )


def test_reject_by_non_invitee_is_403(
    client: TestClient, flow: dict, admin: dict[str, str], unchanged: None
) -> None:
    assert_graph_error(
        client.post(f"{FLOWS}/{flow['id']}/invitation/reject", headers=admin), 403, "accessDenied"
    )


@pytest.mark.parametrize(
    "path",
    [
        "{flows}/{random}",
        "{flows}/not-a-guid",
        "{flows}/{random}/runs",
        "{flows}/{random}/invitation",
        "{flows}/{flow}/runs/{random}",
        "/beta/nothing-here",
    ],
)
def test_unknown_item_is_404(
    client: TestClient, flow: dict, admin: dict[str, str], unchanged: None, path: str
) -> None:
    url = path.format(flows=FLOWS, random=uuid.uuid4(), flow=flow["id"])
    assert_graph_error(client.get(url, headers=admin), 404, "itemNotFound")


def test_other_tenants_flow_is_404_like_a_missing_one(
    client: TestClient, service: Service, flow: dict, unchanged: None
) -> None:
    other = make_tenant(service)
    headers = auth(service, other.tenant_id, other.admin)
    missing = assert_graph_error(
        client.get(f"{FLOWS}/{uuid.uuid4()}", headers=headers), 404, "itemNotFound"
    )
    foreign = assert_graph_error(
        client.get(f"{FLOWS}/{flow['id']}", headers=headers), 404, "itemNotFound"
    )
    assert set(missing) == set(foreign)


def test_wrong_method_is_405(
    client: TestClient, flow: dict, admin: dict[str, str], unchanged: None
) -> None:
    assert_graph_error(
        client.put(f"{FLOWS}/{flow['id']}", json={}, headers=admin), 405, "methodNotAllowed"
    )


def test_unacceptable_accept_header_is_406(
    client: TestClient, admin: dict[str, str], unchanged: None
) -> None:
    assert_graph_error(
        client.get(FLOWS, headers={**admin, "Accept": "text/html"}), 406, "notAcceptable"
    )


def test_duplicate_share_name_is_409(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str], flow: dict, unchanged: None
) -> None:
    assert_graph_error(
        client.post(FLOWS, json=flow_body(tenant), headers=admin), 409, "nameAlreadyExists"
    )


def test_rename_to_taken_share_name_is_409(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str], flow: dict
) -> None:
    other = client.post(FLOWS, json=flow_body(tenant, shareName="second"), headers=admin).json()
    state = everything(client, admin)
    response = client.patch(
        f"{FLOWS}/{other['id']}", json={"shareName": flow["shareName"]}, headers=admin
    )
    assert_graph_error(response, 409, "nameAlreadyExists")
    assert everything(client, admin) == state


def test_run_in_progress_is_409_with_active_run_as_target(
    client: TestClient,
    service: Service,
    settings,
    tenant: TenantUsers,
    flow: dict,
    invitee: dict[str, str],
    admin: dict[str, str],  # type: ignore[no-untyped-def]
) -> None:
    from tests.api.conftest import accept_body, wait_for_run

    client.post(
        f"{FLOWS}/{flow['id']}/invitation/accept", json=accept_body(settings), headers=invitee
    )
    first = client.get(f"{FLOWS}/{flow['id']}/runs", headers=admin).json()["value"][0]
    wait_for_run(client, flow["id"], first["id"], admin)
    active_id = str(uuid.uuid4())
    with service.store.writing() as session:
        session.add(
            Run(
                id=active_id,
                flow_id=flow["id"],
                tenant_id=tenant.tenant_id,
                trigger="onDemand",
                status="running",
                start_at=datetime.utcnow(),
                statistics={},
            )
        )
        session.commit()
    state = everything(client, admin)

    error = assert_graph_error(
        client.post(f"{FLOWS}/{flow['id']}/runs", headers=admin), 409, "runInProgress"
    )

    assert error["target"] == active_id
    assert everything(client, admin) == state


def test_flow_not_ready_is_409(
    client: TestClient, flow: dict, admin: dict[str, str], unchanged: None
) -> None:
    assert_graph_error(
        client.post(f"{FLOWS}/{flow['id']}/runs", headers=admin), 409, "flowNotReady"
    )


def test_answering_a_rejected_invitation_is_409(
    client: TestClient, flow: dict, invitee: dict[str, str], admin: dict[str, str], settings
) -> None:  # type: ignore[no-untyped-def]
    from tests.api.conftest import accept_body

    client.post(f"{FLOWS}/{flow['id']}/invitation/reject", headers=invitee)
    state = everything(client, admin)
    for action, body in (("reject", None), ("accept", accept_body(settings))):
        response = client.post(
            f"{FLOWS}/{flow['id']}/invitation/{action}", json=body, headers=invitee
        )
        assert_graph_error(response, 409, "invitationNotPending")
    assert everything(client, admin) == state


def test_stale_if_match_is_412(
    client: TestClient, flow: dict, admin: dict[str, str], unchanged: None
) -> None:
    for method, kwargs in (("patch", {"json": {"displayName": "New"}}), ("delete", {})):
        response = getattr(client, method)(
            f"{FLOWS}/{flow['id']}", headers={**admin, "If-Match": '"stale"'}, **kwargs
        )
        assert_graph_error(response, 412, "preconditionFailed")


def test_stale_body_etag_is_412(
    client: TestClient, flow: dict, admin: dict[str, str], unchanged: None
) -> None:
    response = client.patch(
        f"{FLOWS}/{flow['id']}", json={"displayName": "New", "eTag": "stale"}, headers=admin
    )
    assert_graph_error(response, 412, "preconditionFailed")


def test_body_over_one_mebibyte_is_413(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str], unchanged: None
) -> None:
    body = flow_body(tenant, displayName="x" * (1024 * 1024 + 10))
    assert_graph_error(client.post(FLOWS, json=body, headers=admin), 413, "payloadTooLarge")


def test_non_json_body_is_415(client: TestClient, admin: dict[str, str], unchanged: None) -> None:
    response = client.post(
        FLOWS,
        content=b"displayName=x",
        headers={**admin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_graph_error(response, 415, "unsupportedMediaType")


@pytest.mark.parametrize(
    ("destination", "status", "code"),
    [
        ({"url": "ftp://example/x"}, 400, "badRequest"),
        ({"url": "file:///etc"}, 400, "badRequest"),
        ({"url": "{lake}/../../escape"}, 400, "badRequest"),
        ({"url": "{lake}/ok", "format": "csv"}, 400, "badRequest"),
        ({"url": "{lake}/ok", "credential": {"password": "x"}}, 400, "badRequest"),
        ({"url": 42}, 400, "badRequest"),
        ({}, 400, "badRequest"),
        ({"url": "{lake}/a-file/sub"}, 422, "destinationUnreachable"),
    ],
)
def test_accept_bad_destination(
    client: TestClient,
    settings,
    flow: dict,
    invitee: dict[str, str],
    unchanged: None,
    destination: dict,
    status: int,
    code: str,  # type: ignore[no-untyped-def]
) -> None:
    (settings.lake_dir / "a-file").write_text("x")
    if isinstance(destination.get("url"), str):
        destination = {
            **destination,
            "url": destination["url"].replace("{lake}", settings.lake_dir.as_uri()),
        }
    response = client.post(
        f"{FLOWS}/{flow['id']}/invitation/accept",
        json={"destination": destination},
        headers=invitee,
    )
    assert_graph_error(response, status, code)


@pytest.mark.parametrize(
    "schedule",
    [{"frequency": "weekly"}, {"timeOfDay": "25:00"}, {"timeOfDay": 6}, {"extra": 1}, "daily"],
)
def test_accept_bad_schedule_is_400(
    client: TestClient,
    settings,
    flow: dict,
    invitee: dict[str, str],
    unchanged: None,
    schedule: Any,
) -> None:  # type: ignore[no-untyped-def]
    body = {"destination": {"url": (settings.lake_dir / "x").as_uri()}, "schedule": schedule}
    response = client.post(f"{FLOWS}/{flow['id']}/invitation/accept", json=body, headers=invitee)
    assert_graph_error(response, 400, "badRequest")


def test_client_request_id_is_echoed(client: TestClient, admin: dict[str, str]) -> None:
    response = client.get(
        f"{FLOWS}/{uuid.uuid4()}", headers={**admin, "client-request-id": "abc-123"}
    )
    assert response.headers["client-request-id"] == "abc-123"
    assert response.json()["error"]["innerError"]["client-request-id"] == "abc-123"
    ok = client.get(FLOWS, headers={**admin, "client-request-id": "abc-124"})
    assert ok.headers["client-request-id"] == "abc-124"
    assert ok.headers["request-id"]


def test_secrets_never_echoed(
    client: TestClient, settings, flow: dict, invitee: dict[str, str], caplog
) -> None:  # type: ignore[no-untyped-def]
    secret = uuid.uuid4().hex
    body = {"destination": {"url": "az://container/path", "credential": {"sasToken": secret}}}
    response = client.post(f"{FLOWS}/{flow['id']}/invitation/accept", json=body, headers=invitee)
    assert response.status_code in (400, 422)
    assert secret not in response.text
    assert secret not in caplog.text


@pytest.mark.parametrize("field", ["displayName", "shareName"])
def test_nul_character_is_400(
    client: TestClient, tenant: TenantUsers, admin: dict[str, str], unchanged: None, field: str
) -> None:
    body = {**flow_body(tenant, shareName="fresh-name"), field: "bad\x00name"}
    response = client.post(FLOWS, json=body, headers=admin)
    assert_graph_error(response, 400, "badRequest", "invalidProperty")
