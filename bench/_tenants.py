"""Tenants for ``bench/fleet.py``: their directories, districts, tokens and accepted flows.

Seeding many tenants the way a hosting provider would (an import each) costs about 3 s per
1,000-student district here, so only the first tenant's district is generated and loaded
with ``load_sds_csv``; every other tenant gets a copy of its rows made by PostgreSQL
(``copy_tenant_rows``: ``INSERT ... SELECT`` with the tenant column replaced). A canonical
table's primary key is the tenant plus the natural key, so copies never collide; row numbers
and versions are per tenant, so they are copied as they are, and each copy gets a counter row
of its own with a new epoch. What differs from real loads: the GUIDs inside the rows are the
first tenant's (ids are derived from the tenant) and the districts are identical; an export
reads and writes the same number of rows and bytes either way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, Table, text

from industrydata.canonical.sql import CANONICAL_CHANGES, TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.config import Settings
from industrydata.directory import add_user
from industrydata.identity import DevelopmentKeys, mint_token
from industrydata.store import CredentialSealer, Store

FLOWS = "/beta/industryData/dataShareOutgoingFlows"
BENCH_NAMESPACE = uuid.UUID("0f1ee7be-7c4a-4d7e-9a0b-000000000010")
COPY_BATCH_TENANTS = 20
"""Tenants copied per transaction (a transaction writes about 30,000 rows per tenant)."""


@dataclass(frozen=True)
class BenchTenant:
    """A tenant and its two Global Administrators; the same ids for the same index on every
    run, so a seeded database can be reused."""

    index: int
    tenant_id: str
    owner: str
    invitee: str

    @classmethod
    def numbered(cls, index: int) -> BenchTenant:
        tenant_id, owner, invitee = (
            str(uuid.uuid5(BENCH_NAMESPACE, f"tenant-{index}/{role}"))
            for role in ("tenant", "owner", "invitee")
        )
        return cls(index, tenant_id, owner, invitee)


def bench_tenants(count: int) -> list[BenchTenant]:
    return [BenchTenant.numbered(index) for index in range(count)]


def add_administrators(store: Store, tenants: Sequence[BenchTenant]) -> None:
    """Each tenant's owner and invitee, both Global Administrators, in one transaction."""
    with store.writing() as session:
        for tenant in tenants:
            for object_id, name in ((tenant.owner, "Adele"), (tenant.invitee, "Megan")):
                add_user(
                    session,
                    tenant_id=tenant.tenant_id,
                    object_id=object_id,
                    display_name=name,
                    is_global_admin=True,
                )
        session.commit()


def _copy_statement(table: Table, tenant_column: str, replaced: dict[str, str]) -> Any:
    """``INSERT ... SELECT`` of the source tenant's rows once per target tenant."""
    columns = [column.name for column in table.columns]
    values = {name: f'source."{name}"' for name in columns}
    values.update({tenant_column: "target.tenant", **replaced})
    column_list = ", ".join(f'"{name}"' for name in columns)
    return text(
        f"INSERT INTO {table.name} ({column_list}) "
        f"SELECT {', '.join(values[name] for name in columns)} FROM {table.name} AS source "
        "CROSS JOIN unnest(CAST(:targets AS text[])) AS target(tenant) "
        f'WHERE source."{tenant_column}" = :source'
    )


def copy_tenant_rows(engine: Engine, source: str, targets: Sequence[str]) -> None:
    """Give every tenant of ``targets`` a copy of ``source``'s canonical rows and change
    counters (PostgreSQL only); ANALYZE afterwards, as autovacuum would."""
    statements = [
        _copy_statement(sql_table(table), TENANT_COLUMN, {}) for table in CANONICAL_TABLES
    ]
    statements.append(
        _copy_statement(CANONICAL_CHANGES, "tenant_id", {"epoch": "gen_random_uuid()::text"})
    )
    for start in range(0, len(targets), COPY_BATCH_TENANTS):
        batch = list(targets[start : start + COPY_BATCH_TENANTS])
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(statement, {"source": source, "targets": batch})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


class Tokens:
    """Tokens of a data dir's development identity provider (its keys are made here, before
    any process starts, as ``industrydata serve`` would make them)."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(data_dir=data_dir)
        self.keys = DevelopmentKeys(data_dir)
        CredentialSealer(data_dir / "keys" / "credential.key")

    def headers(self, tenant_id: str, object_id: str) -> dict[str, str]:
        jwt = mint_token(
            self.keys,
            issuer=self.settings.token_issuer,
            audience=self.settings.token_audience,
            tenant_id=tenant_id,
            object_id=object_id,
            lifetime_seconds=6 * 3600,
        )
        return {"Authorization": f"Bearer {jwt}"}


def create_and_accept(
    client: httpx.Client, tokens: Tokens, tenant: BenchTenant, destination: Path
) -> str:
    """A flow of ``tenant`` accepted to a local ``sdsCsv`` destination with no schedule (the
    accept starts its first run); the flow's id."""
    body = {
        "@odata.type": "#microsoft.graph.industryData.dataShareOutgoingFlow",
        "displayName": "Roster to the lake",
        "shareName": "lake",
        "inviteeUserIds": [tenant.invitee],
    }
    created = client.post(FLOWS, json=body, headers=tokens.headers(tenant.tenant_id, tenant.owner))
    if created.status_code != 201:
        raise SystemExit(f"creating a flow: {created.status_code} {created.text}")
    flow_id = str(created.json()["id"])
    accept = {
        "destination": {"url": destination.as_uri(), "format": "sdsCsv"},
        "schedule": {"frequency": "none"},
    }
    accepted = client.post(
        f"{FLOWS}/{flow_id}/invitation/accept",
        json=accept,
        headers=tokens.headers(tenant.tenant_id, tenant.invitee),
    )
    if accepted.status_code != 200:
        raise SystemExit(f"accepting a flow: {accepted.status_code} {accepted.text}")
    return flow_id


def start_run(client: httpx.Client, headers: dict[str, str], flow_id: str) -> str:
    """``POST .../runs`` with the flow owner's ``headers``; the new run's id."""
    response = client.post(f"{FLOWS}/{flow_id}/runs", json={}, headers=headers)
    if response.status_code != 201:
        raise SystemExit(f"starting a run: {response.status_code} {response.text}")
    return str(response.json()["id"])
