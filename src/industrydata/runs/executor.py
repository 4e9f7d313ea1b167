"""Execute one run: check the invitee, export in a child process, record the outcome.

The same function runs in the embedded dispatcher's threads and (later) in workers. The
outcome is written with retries while the store is busy (``run_finish_retry_seconds``); if it
still has not landed it goes to ``on_unrecorded`` (the dispatcher keeps it for the tick).
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
from ..errors import DestinationInUse, IndustryDataError, LoadBeingApplied, StoreBusy
from ..lake import DestinationIdentity
from ..observability import bind_log_ids, in_log_context, observe_run_finished
from ..states import FlowState, InvitationStatus, RunStatus, Transition
from ..store import (
    CredentialSealer,
    Flow,
    Invitation,
    Run,
    Store,
    claimed_destination,
    retry_while_busy,
)
from .export_process import ExportJob, ExportStopped, run_export_process
from .lifecycle import (
    RUN_INTERRUPTED,
    RunOutcome,
    record_last_progress,
    record_progress,
    run_error,
)

__all__ = ["FENCED_EXPORT_POLL_SECONDS", "FENCED_EXPORT_WAIT_SECONDS", "execute_run", "utcnow"]

logger = logging.getLogger(__name__)

FENCED_EXPORT_WAIT_SECONDS = 30 * 60.0
"""How long a run waits for a load of its tenant to finish applying before it fails."""

FENCED_EXPORT_POLL_SECONDS = 5.0

PROGRESS_RECORD_SECONDS = 0.5
"""A table's progress is written once the last write is this old, and the last table's
always (it gates the publication); the export process has what is left written when the
child goes quiet (``run_export_process``). A commit per table would cost a small run more
CPU than a tenth of its export."""


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


def _stored_status(store: Store, run_id: str) -> RunStatus | None:
    """The run's status in the store now (None when it is gone with its flow)."""
    with store.reading() as session:
        run = session.get(Run, run_id)
        return RunStatus(run.status) if run is not None else None


@in_log_context  # its log records carry run_id, and tenant_id once known
def execute_run(
    run_id: str,
    *,
    store: Store,
    settings: Settings,
    sealer: CredentialSealer,
    stopping: threading.Event | None = None,
    clock: Callable[[], datetime] = utcnow,
    on_unrecorded: Callable[[RunOutcome], None] | None = None,
) -> RunStatus | None:
    """Carry out a running run to its end; returns its final status (None if not runnable,
    or gone with its flow).

    A run ended by someone else meanwhile (cancelled, its invitation replaced, its flow
    deleted) keeps the outcome they wrote: this records nothing over it.

    Raises:
        StoreBusy: the outcome could not be written and there is no ``on_unrecorded``.
    """
    loaded = _load(store, run_id)
    if loaded is None:
        return None
    run, flow, invitation, claimed = loaded
    bind_log_ids(tenant_id=flow.tenant_id)
    started = time.monotonic()
    statistics: dict[str, Any] = dict(run.statistics or {})

    def observe(outcome: RunOutcome) -> None:
        observe_run_finished(
            invitation.destination_format or "sdsCsv",
            outcome.status.value,
            time.monotonic() - started,
            int(statistics.get("rowsWritten") or 0),
        )

    def record(outcome: RunOutcome) -> RunStatus | None:
        try:
            written = retry_while_busy(
                lambda: outcome.record(store), within_seconds=settings.run_finish_retry_seconds
            )
        except StoreBusy:
            if on_unrecorded is None:
                raise
            logger.warning("run %s: store busy, its outcome is kept for the next tick", run_id)
            on_unrecorded(outcome)
            observe(outcome)
            return outcome.status
        if written:
            observe(outcome)
        else:
            logger.info(
                "run %s had already ended; its outcome (%s) is not recorded",
                run_id,
                outcome.status.value,
            )
            return _stored_status(store, run_id)
        return outcome.status

    def fail(
        code: str, message: str, target: str | None = None, flow_state: FlowState | None = None
    ) -> RunStatus | None:
        """End the run as failed (the flow follows: problem, or ``flow_state``)."""
        now = clock()
        statistics["durationSeconds"] = round(time.monotonic() - started, 3)
        return record(
            RunOutcome(
                run_id,
                RunStatus.FAILED,
                now,
                statistics=statistics,
                blocking_error=run_error(code, message, now, target),
                flow_state=flow_state,
            )
        )

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
    recorded_at = time.monotonic()

    def save_progress() -> bool:
        nonlocal recorded_at
        recorded_at = time.monotonic()
        return record_progress(store, run_id, statistics, clock())

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
        if tables_done < tables_total:
            if time.monotonic() - recorded_at < PROGRESS_RECORD_SECONDS:
                return True
            return save_progress()
        return record_last_progress(
            store, run_id, statistics, clock(), within_seconds=settings.run_finish_retry_seconds
        )

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
            delta_deletion_vectors=invitation.deletion_vectors(settings.delta_deletion_vectors),
            delta_change_data_feed=invitation.change_data_feed(),
            claimed_destination=claimed,
            flow_id=flow.id,
        )
        snapshot_id = _export_after_loads(
            job,
            on_progress=on_progress,
            on_heartbeat=save_progress,
            stopping=stopping,
        )
    except ExportStopped as stopped:
        status = _stored_status(store, run_id)
        if status is not RunStatus.RUNNING:
            logger.info("run %s stopped: it had already ended elsewhere", run_id)
            return status
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
    return record(RunOutcome(run_id, RunStatus.COMPLETED, clock(), statistics=statistics))


def _export_after_loads(
    job: ExportJob,
    *,
    on_progress: Callable[[Any, int, int], bool],
    on_heartbeat: Callable[[], bool],
    stopping: threading.Event | None,
) -> str:
    """The export, started again every ``FENCED_EXPORT_POLL_SECONDS`` while a load of the
    tenant is being applied, for ``FENCED_EXPORT_WAIT_SECONDS`` at most (then the run fails
    with ``loadInProgress``: a load that died half-way keeps its fence until the next one)."""
    waiting_since = time.monotonic()
    while True:
        try:
            return run_export_process(
                job, on_progress=on_progress, on_heartbeat=on_heartbeat, should_stop=stopping
            )
        except LoadBeingApplied:
            if time.monotonic() - waiting_since >= FENCED_EXPORT_WAIT_SECONDS:
                raise
        if not on_heartbeat():
            raise ExportStopped("the run is no longer running")
        if (stopping or threading.Event()).wait(FENCED_EXPORT_POLL_SECONDS):
            raise ExportStopped("the service is stopping")


def _add_totals(statistics: dict[str, Any]) -> None:
    tables = statistics.get("tables", [])
    for total in ("rowsWritten", "filesWritten", "bytesWritten"):
        statistics[total] = sum(entry[total] for entry in tables)
