"""Metrics: run and import events counted in the package's own registry, the store's runs
by status and the queue's depth read at each scrape, nothing about a tenant in any label."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import prometheus_client
import pytest

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import (
    LoadReport,
    load_oneroster_csv,
    load_sds_csv,
    load_sds_lake,
)
from industrydata.observability import (
    METRICS_CONTENT_TYPE,
    RUN_STATUSES,
    observe_import_rows,
    observe_run_finished,
    render_metrics,
)
from industrydata.store import Flow, Run, Store, open_store
from tests.canonical.ingest_support import ONEROSTER_DROP, write_drop
from tests.canonical.test_ingest_sds_lake import _snapshot as lake_snapshot
from tests.runs.test_lifecycle import NOW
from tests.runs.test_lifecycle import _flow as accepted_flow
from tests.observability.scrape import closed_port_postgres_url, family_names, sample_value

DURATION = "industrydata_run_duration_seconds"
ROWS_EXPORTED = "industrydata_rows_exported_total"
IMPORT_ROWS = "industrydata_import_rows_total"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    yield store
    store.dispose()


def scrape(store: Store | None = None, **kwargs: object) -> bytes:
    body, content_type = render_metrics(store, **kwargs)  # type: ignore[arg-type]
    assert content_type == METRICS_CONTENT_TYPE
    return body


def grown(before: bytes, after: bytes, name: str, **labels: str) -> float:
    """How much the sample grew between two scrapes (absent counts as 0: not yet counted)."""
    return (sample_value(after, name, **labels) or 0.0) - (
        sample_value(before, name, **labels) or 0.0
    )


def test_a_finished_run_adds_to_the_histogram_and_the_rows_counter() -> None:
    before = scrape()

    observe_run_finished("parquet", "completed", 3.5, 120)

    after = scrape()
    labels = {"format": "parquet", "status": "completed"}
    assert grown(before, after, f"{DURATION}_count", **labels) == 1
    assert grown(before, after, f"{DURATION}_sum", **labels) == 3.5
    for bound, added in (("2.0", 0), ("5.0", 1), ("+Inf", 1)):
        assert grown(before, after, f"{DURATION}_bucket", le=bound, **labels) == added
    assert grown(before, after, ROWS_EXPORTED, format="parquet") == 120


def test_a_run_that_wrote_nothing_counts_its_duration_and_no_rows() -> None:
    before = scrape()

    observe_run_finished("delta", "failed", 0.2, 0)

    after = scrape()
    assert grown(before, after, f"{DURATION}_count", format="delta", status="failed") == 1
    assert grown(before, after, ROWS_EXPORTED, format="delta") == 0


def _sds_csv(store: Store, folder: Path, tenant_id: str) -> LoadReport:
    generate_sds_csv(folder, students=15, seed=2)
    return load_sds_csv(store.write_engine, folder, tenant_id=tenant_id)


def _oneroster_csv(store: Store, folder: Path, tenant_id: str) -> LoadReport:
    return load_oneroster_csv(
        store.write_engine, write_drop(folder, ONEROSTER_DROP), tenant_id=tenant_id
    )


def _sds_lake(store: Store, folder: Path, tenant_id: str) -> LoadReport:
    snapshot = lake_snapshot(folder, {"PersonEmailAddress": "e1,ann@x.example,,p1,,\n"})
    return load_sds_lake(store.write_engine, snapshot, tenant_id=tenant_id)


@pytest.mark.parametrize(
    ("format", "load"),
    [("sds-csv", _sds_csv), ("oneroster-csv", _oneroster_csv), ("sds-lake", _sds_lake)],
)
def test_a_committed_load_counts_the_rows_it_wrote(
    store: Store, tmp_path: Path, format: str, load: Callable[[Store, Path, str], LoadReport]
) -> None:
    before = scrape()

    report = load(store, tmp_path / "drop", str(uuid.uuid4()))

    written = sum(report.rows.values())
    assert written > 0
    assert grown(before, scrape(), IMPORT_ROWS, format=format) == written


def test_import_rows_are_counted_by_format() -> None:
    before = scrape()

    observe_import_rows("oneroster-csv", 40)
    observe_import_rows("sds-lake", 7)

    after = scrape()
    for format, rows in (("oneroster-csv", 40), ("sds-lake", 7)):
        assert grown(before, after, IMPORT_ROWS, format=format) == rows


def _flow_with_runs(store: Store, *statuses: str) -> str:
    """An accepted flow of a new tenant with runs of ``statuses`` (at most one running);
    the tenant's id."""
    flow_id = accepted_flow(store)
    with store.writing() as session:
        tenant_id = session.get(Flow, flow_id).tenant_id
        for status in statuses:
            session.add(
                Run(
                    id=str(uuid.uuid4()),
                    flow_id=flow_id,
                    tenant_id=tenant_id,
                    trigger="onDemand",
                    status=status,
                    start_at=NOW,
                )
            )
        session.commit()
    return tenant_id


def test_the_runs_gauge_counts_the_store_by_status_over_every_tenant(store: Store) -> None:
    tenants = [
        _flow_with_runs(store, "completed", "completed", "failed", "running"),
        _flow_with_runs(store, "running", "completedWithWarnings"),
    ]

    body = scrape(store)

    counts = {
        status: sample_value(body, "industrydata_runs", status=status) for status in RUN_STATUSES
    }
    assert counts == {
        "running": 2,
        "completed": 2,
        "completedWithErrors": 0,
        "completedWithWarnings": 1,
        "failed": 1,
    }
    assert not any(tenant in body.decode() for tenant in tenants)


def test_the_queue_depth_is_reported_when_given_and_left_out_without(store: Store) -> None:
    body = scrape(store, queue_depth=lambda: {"exports": 3, "imports": 0})

    assert sample_value(body, "industrydata_queue_depth", queue="exports") == 3
    assert sample_value(body, "industrydata_queue_depth", queue="imports") == 0
    assert "industrydata_queue_depth" not in family_names(scrape(store))


def test_a_store_or_queue_that_fails_leaves_its_gauge_out_and_the_rest_is_served(
    tmp_path: Path,
) -> None:
    gone = open_store(f"sqlite:///{tmp_path / 'removed.db'}")
    (tmp_path / "removed.db").unlink()

    def broken_queue() -> dict[str, int]:
        raise ConnectionError("connection to postgresql://app:s3cret@db failed")

    try:
        body = scrape(gone, queue_depth=broken_queue)
    finally:
        gone.dispose()

    names = family_names(body)
    assert "industrydata_runs" not in names and "industrydata_queue_depth" not in names
    assert {"industrydata_run_duration_seconds", "industrydata_rows_exported"} <= names
    assert not (tmp_path / "removed.db").exists()


def test_the_unreachable_postgresql_store_leaves_the_runs_gauge_out() -> None:
    closed = open_store(closed_port_postgres_url())
    try:
        body = scrape(closed)
    finally:
        closed.dispose()

    assert "industrydata_runs" not in family_names(body)


def test_the_metrics_stay_out_of_the_global_registry() -> None:
    observe_run_finished("sdsCsv", "completed", 1.0, 1)

    assert b"industrydata_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)
    assert b"industrydata_run_duration_seconds" in scrape()
