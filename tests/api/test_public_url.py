"""Absolute URLs (``Location``, ``@odata.context``, ``@odata.nextLink``, ``jwks_uri``) come
from ``public_url``, or the listening address when it is unset, or the request's ``Host`` only
when that is in ``allowed_hosts``: a spoofed ``Host`` never appears in any response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from industrydata.api import create_app
from industrydata.config import Settings
from industrydata.service import Service
from tests.api.conftest import FLOWS, flow_body
from tests.factories import auth, make_tenant

SPOOFED = "attacker.example"


def absolute_urls(client: TestClient, host: str) -> tuple[list[str], dict[str, str]]:
    """Every absolute URL the API writes, from requests sent with ``Host: host``; and the
    caller's headers (without the Host)."""
    service: Service = client.app.state.service  # type: ignore[attr-defined]
    tenant = make_tenant(service)
    caller = auth(service, tenant.tenant_id, tenant.admin)
    headers = {**caller, "Host": host}
    urls: list[str] = []
    for share_name in ("first", "second"):
        created = client.post(FLOWS, json=flow_body(tenant, shareName=share_name), headers=headers)
        assert created.status_code == 201, created.text
        urls += [created.headers["location"], created.json()["@odata.context"]]
    page = client.get(f"{FLOWS}?$top=2", headers=headers).json()
    urls += [page["@odata.context"], page["@odata.nextLink"]]
    flow_id = page["value"][0]["id"]
    runs = client.get(f"{FLOWS}('{flow_id}')/runs", headers=headers).json()
    urls.append(runs["@odata.context"])
    invitees = client.get(f"{FLOWS}/getPotentialDataShareInvitees()", headers=headers).json()
    urls.append(invitees["@odata.context"])
    urls.append(client.get("/beta/", headers=headers).json()["@odata.context"])
    urls.append(client.get("/beta/industryData", headers=headers).json()["@odata.context"])
    discovery = client.get("/.well-known/openid-configuration", headers=headers).json()
    urls.append(discovery["jwks_uri"])
    return urls, caller


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Any]:
    """``make_client(**overrides)``: a client of a service with the settings overridden."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        configured = Settings(**{**settings.model_dump(), "page_size": 1, **overrides})
        client = TestClient(create_app(configured), base_url="http://testserver")
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_unset_public_url_uses_the_listening_address_not_the_host_header(
    make_client: Any,
) -> None:
    client = make_client()
    urls, caller = absolute_urls(client, SPOOFED)
    assert all(url.startswith("http://testserver/") for url in urls), urls
    next_page = client.get(urls[5], headers=caller)
    assert next_page.status_code == 200, next_page.text
    assert len(next_page.json()["value"]) == 1


def test_public_url_is_the_base_of_every_absolute_url(make_client: Any) -> None:
    client = make_client(public_url="https://data.example.org/industrydata/")
    urls, _ = absolute_urls(client, SPOOFED)
    assert all(url.startswith("https://data.example.org/industrydata/") for url in urls), urls
    location, next_link = urls[0], urls[5]
    assert location.startswith("https://data.example.org/industrydata/beta/industryData/")
    assert next_link.startswith(
        "https://data.example.org/industrydata/beta/industryData/dataShareOutgoingFlows?$skiptoken="
    )


def test_allowed_host_is_used_and_others_are_not(make_client: Any) -> None:
    client = make_client(
        public_url="https://data.example.org", allowed_hosts="API.example.org, other.example"
    )
    allowed, _ = absolute_urls(client, "api.example.org")
    assert all(url.startswith("http://api.example.org/") for url in allowed), allowed
    spoofed, _ = absolute_urls(client, SPOOFED)
    assert all(url.startswith("https://data.example.org/") for url in spoofed), spoofed
