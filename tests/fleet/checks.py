"""Checks shared by the fleet tests: the runs in the store, the snapshots in the lake."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.lake import LocalDestination
from industrydata.runs.export import export_snapshot
from industrydata.store import Run
from tests.factories import wait_for

from .conftest import Fleet, SeededTenant, store_of

CURRENT_ROSTER = "roster/current.roster.manifest.cdm.json"


def runs_of(fleet: Fleet) -> list[Run]:
    store = store_of(fleet)
    try:
        with store.reading() as session:
            return list(session.scalars(select(Run).order_by(Run.start_at)))
    finally:
        store.dispose()


def wait_until_no_run_is_running(fleet: Fleet, timeout: float) -> list[Run]:
    def settled() -> list[Run] | None:
        runs = runs_of(fleet)
        return runs if runs and all(run.status != "running" for run in runs) else None

    return wait_for(settled, timeout=timeout, interval=0.5)


def published_snapshot(lake: Path) -> str:
    """The snapshot id the lake's current roster manifest names."""
    (sub_manifest,) = json.loads((lake / CURRENT_ROSTER).read_bytes())["subManifests"]
    match = re.fullmatch(r"local:/roster/([^/]+)/.*", sub_manifest["definition"])
    assert match, sub_manifest
    return match.group(1)


def table_lines(lake: Path, snapshot: str, table: str) -> list[bytes]:
    lines: list[bytes] = []
    for part in sorted((lake / "roster" / snapshot / table).glob("part-*.csv")):
        lines += part.read_bytes().splitlines()
    return sorted(lines)


def assert_snapshot_equals_store(fleet: Fleet, tenant: SeededTenant, lake: Path, tmp: Path) -> None:
    """The lake's current snapshot holds, table by table, the lines an export of the store
    made here writes."""
    expected = tmp / f"expected-{tenant.tenant_id}"
    expected.mkdir()
    snapshot = export_snapshot(
        fleet.database_url,
        tenant.tenant_id,
        LocalDestination(expected),
        format="sdsCsv",
        run_id="expected",
        snapshot_time=datetime(2030, 1, 1),
    ).snapshot_id
    published = published_snapshot(lake)
    for table in CANONICAL_TABLES:
        assert table_lines(lake, published, table.name) == table_lines(
            expected, snapshot, table.name
        ), (tenant.tenant_id, table.name)


def assert_no_flow_had_two_running_runs(runs: list[Run]) -> None:
    by_flow: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_flow[run.flow_id].append(run)
    for flow_runs in by_flow.values():
        flow_runs.sort(key=lambda run: run.start_at)
        for earlier, later in zip(flow_runs, flow_runs[1:]):
            assert earlier.end_at is not None and earlier.end_at <= later.start_at, (
                earlier.id,
                later.id,
            )
