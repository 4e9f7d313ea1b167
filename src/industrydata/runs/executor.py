"""Execute one run: check the invitee, export in a child process, record the outcome.

The same function runs in the embedded dispatcher's threads and (later) in workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ..config import Settings
from ..directory import is_global_administrator
from ..errors import DestinationInUse, IndustryDataError
from ..lake import DestinationIdentity
from ..states import FlowState, InvitationStatus, RunStatus, Transition
from ..store import CredentialSealer, Flow, Invitation, Run, Store, claimed_destination
from .export_process import ExportJob, ExportStopped, run_export_process
from .lifecycle import RUN_INTERRUPTED, finish_run, record_progress, run_error

__all__ = ["execute_run", "utcnow"]

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Naive UTC, as the store keeps times."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _load(
    store: Store, run_id: str
) -> tuple[Run, Flow, Invitation, DestinationIdentity | None] | None:
    """The run, its flow and accepted invitation, and the destination the flow claimed."""
    with store.reading() as session:
        run = session.get(Run, run_id)
        if run is None or run.status != RunStatus.RUNNING.value:
            return None
        flow = run.flow
        invitation = flow.invitations[-1] if flow.invitations else None
        if invitation is None or invitation.status != InvitationStatus.ACCEPTED.value:
            return None
        claimed = claimed_destination(session, flow.id)
        return run, flow, invitation, DestinationIdentity(*claimed) if claimed else None


def execute_run(
    run_id: str,
    *,
    store: Store,
    settings: Settings,
    sealer: CredentialSealer,
    stopping: threading.Event | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> RunStatus | None:
    """Carry out a running run to its end; returns its final status (None if not runnable)."""
    loaded = _load(store, run_id)
    if loaded is None:
        return None
    run, flow, invitation, claimed = loaded
    started = time.monotonic()
    statistics: dict[str, Any] = dict(run.statistics or {})

    def fail(
        code: str, message: str, target: str | None = None, flow_state: FlowState | None = None
    ) -> RunStatus:
        """End the run as failed (the flow follows: problem, or ``flow_state``)."""
        now = clock()
        statistics["durationSeconds"] = round(time.monotonic() - started, 3)
        finish_run(
            store,
            run_id,
            status=RunStatus.FAILED,
            now=now,
            statistics=statistics,
            blocking_error=run_error(code, message, now, target),
            flow_state=flow_state,
        )
        return RunStatus.FAILED

    with store.reading() as session:
        authorized = is_global_administrator(
            session, tenant_id=flow.tenant_id, object_id=flow.invitee_user_id
        )
    if not authorized:
        return fail(
            "inviteeNotAuthorized",
            "The invitee no longer holds the Global Administrator role.",
            target=flow.invitee_user_id,
            flow_state=Transition.INVITEE_NOT_AUTHORIZED,
        )

    if claimed is None:
        return fail(
            DestinationInUse.code,
            "The flow holds no claim on its destination: another flow accepted it first. "
            "Accept the invitation again with another destination.",
        )

    tables_by_name = {entry["name"]: entry for entry in statistics.get("tables", [])}

    def on_progress(result: Any, tables_done: int, tables_total: int) -> bool:
        entry = tables_by_name.get(result.name)
        if entry is not None:
            entry.update(
                rowsRead=result.rows_read,
                rowsWritten=result.rows_written,
                filesWritten=result.files_written,
                bytesWritten=result.bytes_written,
                status="completed",
            )
        _add_totals(statistics)
        statistics["progressPercent"] = min(99, int(100 * tables_done / tables_total))
        return record_progress(store, run_id, statistics, clock())

    try:
        job = ExportJob(
            store_url=store.url,
            tenant_id=flow.tenant_id,
            run_id=run_id,
            destination_url=invitation.destination_url or "",
            format=invitation.destination_format or "sdsCsv",
            credential=(
                sealer.open(invitation.credential_sealed) if invitation.credential_sealed else None
            ),
            snapshot_time=run.start_at,
            allowed_local_roots=tuple(settings.allowed_local_roots),
            allowed_storage_endpoints=tuple(settings.allowed_storage_endpoints),
            delta_deletion_vectors=settings.delta_deletion_vectors,
            claimed_destination=claimed,
        )
        snapshot_id = run_export_process(
            job,
            on_progress=on_progress,
            on_heartbeat=lambda: record_progress(store, run_id, statistics, clock()),
            should_stop=stopping,
        )
    except ExportStopped as stopped:
        return fail(RUN_INTERRUPTED, f"The run was interrupted: {stopped}.")
    except IndustryDataError as error:
        logger.warning("run %s failed: %s", run_id, error.message)
        return fail(error.code, error.message, error.target)
    except Exception:
        logger.exception("run %s failed unexpectedly", run_id)
        return fail("generalException", "The run failed because of an internal error.")

    statistics["snapshotId"] = snapshot_id
    statistics["progressPercent"] = 100
    statistics["durationSeconds"] = round(time.monotonic() - started, 3)
    _add_totals(statistics)
    finish_run(store, run_id, status=RunStatus.COMPLETED, now=clock(), statistics=statistics)
    return RunStatus.COMPLETED


def _add_totals(statistics: dict[str, Any]) -> None:
    tables = statistics.get("tables", [])
    for total in ("rowsWritten", "filesWritten", "bytesWritten"):
        statistics[total] = sum(entry[total] for entry in tables)
