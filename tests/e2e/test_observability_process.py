"""Health, metrics and logs of the real ``industrydata serve`` in JSON log mode: every line
of its output is a JSON object, a request's lines carry its request id and a run's its run
and tenant ids, /metrics counts the run, and no token, account key or connection string
reaches the log."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Azurite
from tests.e2e.conftest import ServiceLauncher, run_cli
from tests.e2e.test_service_process import (
    FLOWS,
    api,
    bearer,
    create_flow,
    finished_run,
    only_run,
    seed_tenant,
)
from tests.observability.scrape import sample_value

pytestmark = [pytest.mark.slow, pytest.mark.azurite]

FORGED_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.Zm9yZ2VkLXNpZ25hdHVyZQ"


def log_entries(text: str) -> list[dict[str, Any]]:
    """The service's log lines as JSON objects (the launcher's ``$ command`` line aside)."""
    lines = [line for line in text.splitlines() if line and not line.startswith("$ ")]
    return [json.loads(line) for line in lines]


def test_json_logs_carry_the_ids_and_no_secret(
    launch_service: ServiceLauncher, tmp_path: Path, azurite: Azurite, azure_container: str
) -> None:
    data_dir = tmp_path / "data"
    run_cli("generate", "sds-csv", tmp_path / "drop", "--students", "30")
    tenant = seed_tenant(data_dir, roster=tmp_path / "drop")
    owner = bearer(data_dir, tenant.tenant_id, tenant.owner)
    invitee = bearer(data_dir, tenant.tenant_id, tenant.invitee)
    service = launch_service(
        data_dir,
        INDUSTRYDATA_LOG_FORMAT="json",
        INDUSTRYDATA_ALLOWED_STORAGE_ENDPOINTS=azurite.origin,
    )

    with api(service) as client, httpx.Client(base_url=service.url, trust_env=False) as root:
        flow = create_flow(client, tenant, owner)
        accepted = client.post(
            f"{FLOWS}/{flow['id']}/invitation/accept",
            json={
                "destination": {
                    "url": f"az://{azure_container}/lake",
                    "format": "sdsCsv",
                    "credential": {"connectionString": azurite.connection_string},
                },
                "schedule": {"frequency": "none"},
            },
            headers=invitee,
        )
        assert accepted.status_code == 200, accepted.text
        run = finished_run(client, flow["id"], only_run(client, flow["id"], invitee)["id"], invitee)
        forged = client.get(FLOWS, headers={"Authorization": f"Bearer {FORGED_TOKEN}"})
        traced = client.get(FLOWS, headers={**owner, "client-request-id": str(uuid.uuid4())})
        ready = root.get("/readyz")
        metrics = root.get("/metrics").text
    service.stop()

    assert run["status"] == "completed", run
    assert (forged.status_code, traced.status_code, ready.status_code) == (401, 200, 200)
    labels = {"format": "sdsCsv", "status": "completed"}
    assert sample_value(metrics, "industrydata_run_duration_seconds_count", **labels) == 1
    rows = run["statistics"]["rowsWritten"]
    assert rows > 0
    assert sample_value(metrics, "industrydata_rows_exported_total", format="sdsCsv") == rows
    assert sample_value(metrics, "industrydata_runs", status="completed") == 1

    log = service.log()
    entries = log_entries(log)
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert any(
        e.get("request_id") == traced.headers["request-id"] and "GET /beta" in e["message"]
        for e in access
    )
    assert all("request_id" in e for e in access)
    ended = [e for e in entries if e["message"].startswith("run ended completed")]
    assert [(e.get("run_id"), e.get("tenant_id")) for e in ended] == [
        (run["id"], tenant.tenant_id)
    ]
    for secret in (
        owner["Authorization"].split()[1],
        invitee["Authorization"].split()[1],
        FORGED_TOKEN,
        azurite.account_key,
        azurite.connection_string,
    ):
        assert secret not in log
