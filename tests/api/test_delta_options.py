"""Per-flow Delta options: the accept body's ``destination.deltaOptions`` is validated, stored
with the invitation, shown with the options runs use, and reaches the writer (docs/api.md)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient
from sqlalchemy import select

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import table_by_name
from industrydata.config import Settings
from industrydata.service import Service
from tests.api.conftest import FLOWS, accept_body, wait_for_run
from tests.conftest import POSTGRES_ONLY
from tests.factories import TenantUsers


@pytest.fixture
def settings(tmp_path: Path, store_url: str, request: pytest.FixtureRequest) -> Settings:
    """The API's settings, with the server default of deletion vectors as parametrised
    (``indirect``), else the configured default."""
    chosen = {"delta_deletion_vectors": request.param} if hasattr(request, "param") else {}
    return Settings(
        data_dir=tmp_path / "data",
        database_url=store_url,
        scheduler_interval_seconds=3600,
        run_throttle_count=3,
        **chosen,
    )


def _accept(client: TestClient, flow_id: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post(f"{FLOWS}/{flow_id}/invitation/accept", json=body, headers=headers)


def _shown_options(client: TestClient, flow_id: str, headers: dict[str, str]) -> list[Any]:
    """The destination's deltaOptions as the invitation and the expanded flow show them."""
    invitation = client.get(f"{FLOWS}/{flow_id}/invitation", headers=headers).json()
    flow = client.get(f"{FLOWS}/{flow_id}?$expand=invitation", headers=headers).json()
    return [
        invitation["destination"]["deltaOptions"],
        flow["invitation"]["destination"]["deltaOptions"],
    ]


@pytest.mark.parametrize("deletion_vectors", [True, False])
def test_accept_stores_and_shows_the_flows_choice(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    invitee: dict[str, str],
    deletion_vectors: bool,
) -> None:
    chosen = {"deletionVectors": deletion_vectors, "changeDataFeed": not deletion_vectors}
    body = accept_body(settings, format="delta", deltaOptions=chosen)

    response = _accept(client, flow["id"], invitee, body)

    assert response.status_code == 200, response.text
    assert response.json()["destination"] == {
        "url": body["destination"]["url"],
        "format": "delta",
        "deltaOptions": chosen,
    }
    assert _shown_options(client, flow["id"], invitee) == [chosen, chosen]


@pytest.mark.parametrize("settings", [True, False], indirect=True)
def test_a_flow_without_options_shows_the_server_default(
    client: TestClient, settings: Settings, flow: dict[str, Any], invitee: dict[str, str]
) -> None:
    response = _accept(client, flow["id"], invitee, accept_body(settings, format="delta"))

    assert response.status_code == 200, response.text
    effective = {"deletionVectors": settings.delta_deletion_vectors, "changeDataFeed": True}
    assert response.json()["destination"]["deltaOptions"] == effective
    assert _shown_options(client, flow["id"], invitee) == [effective, effective]


@pytest.mark.parametrize(
    ("destination", "target"),
    [
        ({"format": "delta", "deltaOptions": {"deletionVector": True}}, ".deletionVector"),
        ({"format": "delta", "deltaOptions": {"deletionVectors": "false"}}, ".deletionVectors"),
        ({"format": "delta", "deltaOptions": {"deletionVectors": 0}}, ".deletionVectors"),
        ({"format": "delta", "deltaOptions": {"changeDataFeed": "off"}}, ".changeDataFeed"),
        ({"format": "delta", "deltaOptions": [True]}, ""),
        ({"format": "parquet", "deltaOptions": {"deletionVectors": False}}, ""),
        ({"deltaOptions": {"deletionVectors": True}}, ""),
    ],
)
def test_accept_refuses_bad_delta_options_and_changes_nothing(
    client: TestClient,
    settings: Settings,
    flow: dict[str, Any],
    invitee: dict[str, str],
    destination: dict[str, Any],
    target: str,
) -> None:
    body = accept_body(settings)
    body["destination"] = {"url": body["destination"]["url"], **destination}

    response = _accept(client, flow["id"], invitee, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["innerError"]["code"]) == ("badRequest", "invalidProperty")
    assert error["target"] == "destination.deltaOptions" + target
    invitation = client.get(f"{FLOWS}/{flow['id']}/invitation", headers=invitee).json()
    assert (invitation["status"], invitation["destination"]) == ("pending", None)
    assert client.get(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()["value"] == []
    assert not (settings.lake_dir / "export").exists()


def _change_two_people(service: Service, tenant_id: str) -> None:
    """Update two Person rows through the store (its triggers record the change)."""
    person = sql_table(table_by_name("Person"))
    with service.store.write_engine.begin() as connection:
        ids = connection.execute(
            select(person.c.Id)
            .where(person.c[TENANT_COLUMN] == tenant_id)
            .order_by(person.c.Id)
            .limit(2)
        ).scalars()
        connection.execute(
            person.update()
            .where(person.c[TENANT_COLUMN] == tenant_id, person.c.Id.in_(list(ids)))
            .values(FirstSeenDateTime=datetime(2020, 1, 1))
        )


def _commits(table: Path) -> list[list[dict[str, Any]]]:
    """The actions of each commit of a Delta table, in version order."""
    return [
        [json.loads(line) for line in path.read_text().splitlines()]
        for path in sorted((table / "_delta_log").glob("*.json"))
    ]


def _run(client: TestClient, flow_id: str, headers: dict[str, str], run_id: str) -> None:
    run = wait_for_run(client, flow_id, run_id, headers)
    assert run["status"] == "completed", run


RUN_CASES = [
    (False, {"deletionVectors": True}, True),
    (True, {"deletionVectors": False}, False),
    (True, None, True),
    (False, None, False),
    (False, {"deletionVectors": True, "changeDataFeed": False}, True),
    (False, {"changeDataFeed": False}, False),
]
"""(server default, the flow's deltaOptions, deletion vectors expected) of the run test."""
BOTH_OPTIONS_CHOSEN = RUN_CASES[4]

# Every case on SQLite; on PostgreSQL only the case where the flow chose both options against
# the server's default. The options are read from the invitation's row (the accept tests
# above show them on each store) and handed to the writer by code that never asks which
# store it has; that one case still takes a PostgreSQL store's change through the triggers
# and the change feed into a Delta commit.
(_POSTGRESQL,) = POSTGRES_ONLY


@pytest.mark.parametrize(
    ("store_url", "settings", "delta_options", "deletion_vectors"),
    [pytest.param("sqlite", *case) for case in RUN_CASES]
    + [pytest.param("postgresql", *BOTH_OPTIONS_CHOSEN, marks=_POSTGRESQL.marks)],
    indirect=["store_url", "settings"],
)
def test_runs_write_deletion_vectors_only_when_the_flow_gets_them(
    client: TestClient,
    service: Service,
    settings: Settings,
    tenant: TenantUsers,
    flow: dict[str, Any],
    invitee: dict[str, str],
    tmp_path: Path,
    delta_options: dict[str, bool] | None,
    deletion_vectors: bool,
) -> None:
    generate_sds_csv(tmp_path / "drop", students=20, seed=4)
    loaded = load_sds_csv(service.store.write_engine, tmp_path / "drop", tenant_id=tenant.tenant_id)
    body = accept_body(settings, format="delta")
    if delta_options is not None:
        body["destination"]["deltaOptions"] = delta_options
    assert _accept(client, flow["id"], invitee, body).status_code == 200
    first = client.get(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()["value"][0]
    _run(client, flow["id"], invitee, first["id"])

    _change_two_people(service, tenant.tenant_id)
    again = client.post(f"{FLOWS}/{flow['id']}/runs", headers=invitee).json()
    _run(client, flow["id"], invitee, again["id"])

    person = settings.lake_dir / "export" / "Person"
    created, changed = _commits(person)
    (protocol,) = [action["protocol"] for action in created if "protocol" in action]
    assert ("deletionVectors" in protocol.get("writerFeatures", ())) is deletion_vectors
    adds = [action["add"] for action in changed if "add" in action]
    assert any("deletionVector" in add for add in adds) is deletion_vectors
    change_data_feed = (delta_options or {}).get("changeDataFeed") is not False
    assert any("cdc" in action for action in changed) is change_data_feed
    (metadata,) = [action["metaData"] for action in created if "metaData" in action]
    expected = str(change_data_feed).lower()
    assert metadata["configuration"]["delta.enableChangeDataFeed"] == expected
    if deletion_vectors:
        # One new file (the changed rows) and the old one again, with a deletion vector.
        assert len(adds) == 2
    else:
        # The old file rewritten without the changed rows, which come in the new file.
        assert not any(action.get("protocol") for action in changed)
        assert DeltaTable(str(person)).to_pyarrow_table().num_rows == loaded.rows["Person"]
