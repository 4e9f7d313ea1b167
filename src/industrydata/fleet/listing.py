"""What the queue holds now, for ``industrydata jobs``: waiting and executing jobs, with the
progress their run or load reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from ..store import LoadJob, Run, Store
from .queue import LOAD_IMPORT, RUN_EXPORT

__all__ = ["QueuedJob", "queued_jobs"]


@dataclass(frozen=True)
class QueuedJob:
    job_id: int
    task: str
    queue: str
    status: str
    """procrastinate's: ``todo`` (waiting) or ``doing`` (executing)."""
    subject: str
    """The run or load the job carries out; the periodic tick for periodic tasks."""
    tenant_id: str | None
    progress: str
    since: datetime | None


def queued_jobs(store: Store) -> list[QueuedJob]:
    """Jobs waiting or executing, oldest first."""
    with store.reading() as session:
        rows = session.execute(
            text(
                "SELECT id, task_name, queue_name, status::text, args, "
                "(SELECT max(at) FROM procrastinate_events e WHERE e.job_id = j.id) "
                "FROM procrastinate_jobs j WHERE status IN ('todo', 'doing') ORDER BY id"
            )
        ).all()
        runs = {
            run.id: run
            for run in session.query(Run).filter(
                Run.id.in_([args.get("run_id") for *_, args, _ in rows if "run_id" in args])
            )
        }
        loads = {
            load.id: load
            for load in session.query(LoadJob).filter(
                LoadJob.id.in_([args.get("load_id") for *_, args, _ in rows if "load_id" in args])
            )
        }
    jobs = []
    for job_id, task, queue, status, args, since in rows:
        subject, tenant, progress = str(args.get("timestamp", "")), None, ""
        if task == RUN_EXPORT and args.get("run_id") in runs:
            run = runs[args["run_id"]]
            subject, tenant = run.id, run.tenant_id
            progress = f"{(run.statistics or {}).get('progressPercent', 0)}%"
        elif task == LOAD_IMPORT and args.get("load_id") in loads:
            load = loads[args["load_id"]]
            subject, tenant = load.id, load.tenant_id
            progress = _load_progress(load.progress)
        jobs.append(
            QueuedJob(job_id, task, queue, status, subject, tenant, progress, _naive(since))
        )
    return jobs


def _load_progress(progress: dict) -> str:
    if not progress:
        return ""
    total = progress.get("bytesTotal") or 0
    share = f" {100 * progress.get('bytesRead', 0) // total}% of it" if total else ""
    return (
        f"{progress.get('filesDone', 0)} files read; {progress.get('file')}:{share}, "
        f"{progress.get('records', 0):,} records"
    )


def _naive(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=None) if moment is not None and moment.tzinfo else moment
