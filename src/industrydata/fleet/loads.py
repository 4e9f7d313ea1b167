"""Roster loads as jobs: ``industrydata import ... --enqueue`` queues, a worker loads.

The files must be readable by the workers at the same path (a shared volume). A load job
holds the lock ``tenant:<id>``, so a tenant's loads run one after another; the load itself
is the CLI's (the same validation, limits and report). Its progress (the file being read,
records so far) is written to ``load_job`` at most once a second, for ``industrydata jobs``.
A load whose worker dies is failed, not retried: on PostgreSQL a load is one transaction,
so nothing of it was applied, and the operator decides when to queue it again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update

from ..errors import LoadError
from ..store import LoadJob, Store
from .queue import IMPORTS_QUEUE, LOAD_IMPORT, defer_on, deferring_app

__all__ = ["LOAD_FORMATS", "LoadStatus", "enqueue_load", "execute_load", "fail_load"]

PROGRESS_EVERY_SECONDS = 1.0


class LoadStatus:
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_REJECTIONS = "completedWithRejections"
    FAILED = "failed"


def _loaders() -> dict[str, Callable[..., Any]]:
    from ..canonical.ingest import load_oneroster_csv, load_sds_csv, load_sds_lake

    return {
        "sds-csv": load_sds_csv,
        "oneroster-csv": load_oneroster_csv,
        "sds-lake": load_sds_lake,
    }


LOAD_FORMATS = ("sds-csv", "oneroster-csv", "sds-lake")


def enqueue_load(
    store: Store,
    *,
    format: str,
    source: Path,
    tenant_id: str,
    report_path: Path | None,
    now: datetime,
) -> tuple[str, int]:
    """Record a load and queue its job in one transaction; (load id, job id)."""
    load_id = str(uuid.uuid4())
    with store.writing() as session:
        session.add(
            LoadJob(
                id=load_id,
                tenant_id=tenant_id,
                format=format,
                source=str(source.resolve()),
                report_path=str(report_path.resolve()) if report_path else None,
                status=LoadStatus.QUEUED,
                progress={},
                created_at=now,
            )
        )
        session.flush()
        job_id = defer_on(
            session,
            deferring_app(store.url),
            LOAD_IMPORT,
            queue=IMPORTS_QUEUE,
            lock=f"tenant:{tenant_id}",
            load_id=load_id,
        )
        session.commit()
    return load_id, job_id


def execute_load(
    store: Store,
    load_id: str,
    *,
    clock: Callable[[], datetime],
    on_rows: Callable[[str, int], None] | None = None,
) -> str | None:
    """Carry out a queued load; its final status (None when it is not queued)."""
    with store.writing() as session:
        job = session.get(LoadJob, load_id, with_for_update=True)
        if job is None or job.status != LoadStatus.QUEUED:
            return None
        job.status = LoadStatus.RUNNING
        job.started_at = job.heartbeat_at = clock()
        format, source, tenant_id = job.format, job.source, job.tenant_id
        report_path = Path(job.report_path) if job.report_path else None
        session.commit()

    files_done = 0
    last_write = 0.0

    def progress(file_progress: Any) -> None:
        nonlocal files_done, last_write
        if file_progress.done:
            files_done += 1
        now = time.monotonic()
        if not file_progress.done and now - last_write < PROGRESS_EVERY_SECONDS:
            return
        last_write = now
        _write(
            store,
            load_id,
            heartbeat_at=clock(),
            progress={
                "file": file_progress.file,
                "filesDone": files_done,
                "records": file_progress.records,
                "bytesRead": file_progress.bytes_read,
                "bytesTotal": file_progress.bytes_total,
            },
        )

    try:
        report = _loaders()[format](
            store.write_engine,
            Path(source),
            tenant_id=tenant_id,
            progress=progress,
            report_path=report_path,
        )
    except LoadError as error:
        fail_load(store, load_id, code=error.code, message=error.message, now=clock())
        return LoadStatus.FAILED
    status = (
        LoadStatus.COMPLETED_WITH_REJECTIONS if report.rejected_records else LoadStatus.COMPLETED
    )
    rows = sum(report.rows.values())
    _write(
        store,
        load_id,
        status=status,
        end_at=clock(),
        outcome={
            "rows": report.rows,
            "records": report.records,
            "rejectedRecords": report.rejected_records,
            "errors": report.errors,
        },
    )
    if on_rows is not None:
        on_rows(format, rows)
    return status


def fail_load(store: Store, load_id: str, *, code: str, message: str, now: datetime) -> None:
    """End a queued or running load as failed (its job failed, or its worker died)."""
    _write(
        store,
        load_id,
        only_if=(LoadStatus.QUEUED, LoadStatus.RUNNING),
        status=LoadStatus.FAILED,
        end_at=now,
        outcome={"error": {"code": code, "message": message}},
    )


def _write(
    store: Store,
    load_id: str,
    *,
    only_if: tuple[str, ...] = (LoadStatus.RUNNING,),
    **values: Any,
) -> None:
    with store.writing() as session:
        session.execute(
            update(LoadJob)
            .where(LoadJob.id == load_id, LoadJob.status.in_(only_if))
            .values(**values)
        )
        session.commit()
