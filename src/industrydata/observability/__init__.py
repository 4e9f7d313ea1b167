"""What an operator watches: structured logs with context ids, Prometheus metrics, liveness
and readiness, for API processes and workers alike (see docs/operations.md)."""

from .health import READINESS_TIMEOUT_SECONDS, Readiness, ReadinessCheck, check_store, liveness
from .health_server import HealthServer
from .logs import (
    CONTEXT_IDS,
    JsonFormatter,
    LogFormat,
    TextFormatter,
    bind_log_ids,
    configure_logging,
    current_log_ids,
    error_summary,
    in_log_context,
    log_context,
    logging_config,
    redact,
)
from .metrics import (
    METRICS_CONTENT_TYPE,
    RUN_STATUSES,
    QueueDepth,
    observe_import_rows,
    observe_run_finished,
    render_metrics,
)

__all__ = [
    "CONTEXT_IDS",
    "METRICS_CONTENT_TYPE",
    "READINESS_TIMEOUT_SECONDS",
    "RUN_STATUSES",
    "HealthServer",
    "JsonFormatter",
    "LogFormat",
    "QueueDepth",
    "Readiness",
    "ReadinessCheck",
    "TextFormatter",
    "bind_log_ids",
    "check_store",
    "configure_logging",
    "current_log_ids",
    "error_summary",
    "in_log_context",
    "liveness",
    "log_context",
    "logging_config",
    "observe_import_rows",
    "observe_run_finished",
    "redact",
    "render_metrics",
]
