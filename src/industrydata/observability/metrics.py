"""Prometheus metrics of both process kinds (API and worker).

Events (a run that ended, an import that committed) are counted by the process they happen
in, in a registry of this package's own: not prometheus-client's global one, so several apps
in one process (tests) share it without registering a metric twice, and no library's metrics
slip in. What the store knows (runs by status) and the queue's depth are read at each scrape,
so every process reports the same, whichever one is scraped.

No metric has a tenant label: ``/metrics`` is served without a token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreBusy
from ..store import Run, Store
from .health import database_file_missing
from .logs import error_summary

__all__ = [
    "METRICS_CONTENT_TYPE",
    "QueueDepth",
    "RUN_DURATION_BUCKETS",
    "RUN_STATUSES",
    "observe_import_rows",
    "observe_run_finished",
    "render_metrics",
]

logger = logging.getLogger(__name__)

QueueDepth = Callable[[], Mapping[str, int]]
"""Jobs waiting, by queue name: given by the composition root of a process with a queue."""

METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The Prometheus text format 0.0.4, which every scraper reads."""

RUN_STATUSES = ("running", "completed", "completedWithErrors", "completedWithWarnings", "failed")
"""The statuses ``industrydata_runs`` always reports, 0 when no run has it."""

RUN_DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
"""A small district exports in about a second, a 500,000-student one in minutes."""

_REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=_REGISTRY)

_RUN_DURATION = Histogram(
    "industrydata_run_duration_seconds",
    "Seconds from a run's start in its executor to its outcome, by destination format and "
    "final status.",
    ["format", "status"],
    buckets=RUN_DURATION_BUCKETS,
    registry=_REGISTRY,
)
_ROWS_EXPORTED = Counter(
    "industrydata_rows_exported",
    "Rows written to destinations by runs that ended in this process, by format (a failed "
    "run's rows count: the work was done).",
    ["format"],
    registry=_REGISTRY,
)
_IMPORT_ROWS = Counter(
    "industrydata_import_rows",
    "Rows written to the canonical store by imports committed in this process, by format "
    "(sds-csv, oneroster-csv, sds-lake).",
    ["format"],
    registry=_REGISTRY,
)


def observe_run_finished(
    format: str, status: str, duration_seconds: float, rows_written: int
) -> None:
    """Count a run that ended in this process (whether or not its outcome was written yet),
    and say so in the log (with the ids of its context: run and tenant)."""
    logger.info(
        "run ended %s: %s, %.3f s, %d rows written", status, format, duration_seconds, rows_written
    )
    _RUN_DURATION.labels(format=format, status=status).observe(max(0.0, duration_seconds))
    if rows_written > 0:
        _ROWS_EXPORTED.labels(format=format).inc(rows_written)


def observe_import_rows(format: str, rows: int) -> None:
    """Count the rows an import committed to the canonical store, and say so in the log."""
    logger.info("import committed: %s, %d rows written", format, rows)
    _IMPORT_ROWS.labels(format=format).inc(max(0, rows))


class _Scrape(Collector):
    """One scrape: this process's metrics, then what the store and the queue say now."""

    def __init__(self, store: Store | None, queue_depth: QueueDepth | None) -> None:
        self._store = store
        self._queue_depth = queue_depth

    def collect(self) -> Iterator[Metric]:
        yield from _REGISTRY.collect()
        if self._store is not None:
            runs = _runs_by_status(self._store)
            if runs is not None:
                yield runs
        if self._queue_depth is not None:
            queues = _queue_depth(self._queue_depth)
            if queues is not None:
                yield queues


def _runs_by_status(store: Store) -> GaugeMetricFamily | None:
    """Runs in the store by status; None (left out of the scrape) when the store fails."""
    if database_file_missing(store):
        logger.warning("metrics: the store's database file is missing")
        return None
    try:
        with store.reading() as session:
            query = select(Run.status, func.count()).group_by(Run.status)
            counts: dict[str, int] = {status: count for status, count in session.execute(query)}
    except (SQLAlchemyError, StoreBusy) as error:
        logger.warning("metrics: the store did not answer: %s", error_summary(error))
        return None
    family = GaugeMetricFamily(
        "industrydata_runs", "Runs in the store by status (every tenant).", labels=["status"]
    )
    for status in sorted({*RUN_STATUSES, *counts}):
        family.add_metric([status], counts.get(status, 0))
    return family


def _queue_depth(queue_depth: QueueDepth) -> GaugeMetricFamily | None:
    """Jobs waiting by queue; None (left out of the scrape) when the count fails."""
    try:
        depths = dict(queue_depth())
    except Exception as error:  # noqa: BLE001 - a scrape reports what it can
        logger.warning("metrics: the queue depth is unknown: %s", error_summary(error))
        return None
    family = GaugeMetricFamily(
        "industrydata_queue_depth", "Jobs waiting to be executed, by queue.", labels=["queue"]
    )
    for queue, depth in sorted(depths.items()):
        family.add_metric([queue], depth)
    return family


def render_metrics(
    store: Store | None, queue_depth: QueueDepth | None = None
) -> tuple[bytes, str]:
    """The body of ``/metrics`` (Prometheus text format) and its content type.

    ``store``: where ``industrydata_runs`` is counted (left out when None or unreachable).
    ``queue_depth``: jobs waiting by queue; without it (embedded mode, which has no queue:
    a run starts the moment it is created) ``industrydata_queue_depth`` is left out.
    """
    return generate_latest(_Scrape(store, queue_depth)), METRICS_CONTENT_TYPE
