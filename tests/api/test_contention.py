"""A writer holding the store's lock never makes the API answer 500: writes wait a bounded
time and answer 503 with Retry-After, change nothing, and reads do not wait at all."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from industrydata.config import Settings
from tests.api.conftest import FLOWS, flow_body
from tests.contention import write_lock_held
from tests.factories import TenantUsers

LOCK_WAIT = 0.5


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=store_url,
        scheduler_interval_seconds=3600,
        store_lock_wait_seconds=LOCK_WAIT,
    )


def _assert_busy(response: Any, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    error = response.json()["error"]
    assert error["code"] == "serviceUnavailable"
    assert error["innerError"]["request-id"]
    assert LOCK_WAIT <= elapsed < LOCK_WAIT + 2


def test_update_under_a_held_write_lock_answers_503_and_changes_nothing(
    client: TestClient, store_url: str, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    with write_lock_held(store_url, "flow"):
        started = time.monotonic()
        response = client.patch(
            f"{FLOWS}/{flow['id']}", json={"displayName": "Renamed"}, headers=admin
        )
        _assert_busy(response, time.monotonic() - started)

    after = client.get(f"{FLOWS}/{flow['id']}", headers=admin).json()
    assert after["displayName"] == flow["displayName"]
    assert after["eTag"] == flow["eTag"]
    renamed = client.patch(f"{FLOWS}/{flow['id']}", json={"displayName": "Renamed"}, headers=admin)
    assert renamed.status_code == 200, renamed.text


def test_create_under_a_held_write_lock_answers_503_and_creates_nothing(
    client: TestClient, store_url: str, tenant: TenantUsers, admin: dict[str, str]
) -> None:
    with write_lock_held(store_url, "flow"):
        started = time.monotonic()
        response = client.post(FLOWS, json=flow_body(tenant), headers=admin)
        _assert_busy(response, time.monotonic() - started)

    assert client.get(FLOWS, headers=admin).json()["value"] == []


def test_reads_do_not_wait_for_a_held_write_lock(
    client: TestClient, store_url: str, flow: dict[str, Any], admin: dict[str, str]
) -> None:
    with write_lock_held(store_url, "flow"):
        started = time.monotonic()
        one = client.get(f"{FLOWS}/{flow['id']}", headers=admin)
        listed = client.get(FLOWS, headers=admin)
        elapsed = time.monotonic() - started

    assert one.status_code == 200 and one.json()["id"] == flow["id"]
    assert [item["id"] for item in listed.json()["value"]] == [flow["id"]]
    assert elapsed < LOCK_WAIT
