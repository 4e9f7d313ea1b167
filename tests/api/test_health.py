"""/healthz, /readyz and /metrics of the API: outside /beta, no token, through the same
request bounds and routing as every path; readiness follows the store, metrics follow runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from industrydata.api import create_app
from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.config import Settings
from industrydata.service import Service
from tests.api.conftest import FLOWS, accept_body, wait_for_run
from tests.conftest import POSTGRES_URL_ENV
from tests.factories import TenantUsers
from tests.observability.scrape import family_names, sample_value



def test_healthz_answers_without_a_token(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "kind": "api", "pid": os.getpid()}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["request-id"]


def test_readyz_answers_ready_when_the_store_answers(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


@pytest.fixture
def store_to_lose(store_url: str, tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A store of its own and how to make it unreachable: its SQLite file removed, or its
    PostgreSQL database dropped (every connection to it closed)."""
    if make_url(store_url).get_backend_name() == "sqlite":
        database = tmp_path / "lost.db"
        yield f"sqlite:///{database}", database.unlink
        return
    server = make_url(os.environ[POSTGRES_URL_ENV]).set(drivername="postgresql+psycopg")
    name = f"industrydata_lost_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False), drop
    finally:
        drop()
        admin.dispose()


def test_readyz_is_503_in_the_graph_envelope_when_the_store_is_unreachable(
    tmp_path: Path, store_to_lose: tuple[str, Callable[[], None]]
) -> None:
    url, lose = store_to_lose
    service = Service(Settings(data_dir=tmp_path / "data", database_url=url))
    with TestClient(create_app(service=service)) as client:
        assert client.get("/readyz").status_code == 200

        lose()
        response = client.get("/readyz")
        alive = client.get("/healthz")

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "serviceUnavailable"
    assert error["message"] in (
        "The store's database file is missing.",
        "The store does not answer.",
    )
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    assert "127.0.0.1" not in response.text and "industrydata_lost" not in response.text
    assert alive.status_code == 200  # liveness never asks the store


def test_metrics_after_a_run_count_its_duration_and_the_rows_it_wrote(
    client: TestClient,
    service: Service,
    settings: Settings,
    tenant: TenantUsers,
    flow: dict[str, Any],
    invitee: dict[str, str],
    tmp_path: Path,
) -> None:
    completed = {"format": "sdsCsv", "status": "completed"}
    generate_sds_csv(tmp_path / "drop", students=20, seed=5)
    load_sds_csv(service.store.write_engine, tmp_path / "drop", tenant_id=tenant.tenant_id)
    before = client.get("/metrics").text

    accepted = client.post(
        f"{FLOWS}/{flow['id']}/invitation/accept", json=accept_body(settings), headers=invitee
    )
    first = client.get(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()["value"][0]
    run = wait_for_run(client, flow["id"], first["id"], invitee)

    response = client.get("/metrics")
    after = response.text
    assert accepted.status_code == 200, accepted.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert run["status"] == "completed"
    rows = run["statistics"]["rowsWritten"]
    assert rows > 0

    def grew(name: str, **labels: str) -> float:
        return (sample_value(after, name, **labels) or 0) - (
            sample_value(before, name, **labels) or 0
        )

    assert grew("industrydata_run_duration_seconds_count", **completed) == 1
    assert 0 < grew("industrydata_run_duration_seconds_sum", **completed) < 60
    assert grew("industrydata_rows_exported_total", format="sdsCsv") == rows
    assert sample_value(after, "industrydata_runs", status="completed") == 1
    assert sample_value(after, "industrydata_runs", status="running") == 0
    assert "industrydata_queue_depth" not in family_names(after)  # embedded: no queue
    for tenant_data in (tenant.tenant_id, tenant.admin, tenant.second_admin, flow["id"]):
        assert tenant_data not in after


def test_metrics_report_the_queue_depth_the_service_is_given(
    client: TestClient, service: Service
) -> None:
    service.queue_depth = lambda: {"exports": 4, "imports": 1}

    body = client.get("/metrics").text

    assert sample_value(body, "industrydata_queue_depth", queue="exports") == 4
    assert sample_value(body, "industrydata_queue_depth", queue="imports") == 1


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_endpoints_keep_the_request_bounds_and_routing(
    client: TestClient, settings: Settings, path: str
) -> None:
    options = client.options(path)
    wrong_method = client.post(path)
    trailing_slash = client.get(path + "/")
    oversized = client.get(path, headers={"X-Padding": "a" * settings.max_request_head_bytes})

    assert (options.status_code, options.headers["allow"]) == (204, "GET, OPTIONS")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "methodNotAllowed"
    assert trailing_slash.status_code == 200
    assert oversized.status_code == 431


def test_the_endpoints_are_not_under_beta(client: TestClient) -> None:
    for path in ("/beta/healthz", "/beta/readyz", "/beta/metrics"):
        assert client.get(path).status_code == 404
