"""The embedded scheduler: a thread that does the periodic work of the service."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..errors import RunInProgress
from ..states import InvitationStatus, ReadinessStatus, RunTrigger, ScheduleFrequency
from ..store import Flow, Invitation, Run, Store
from .lifecycle import start_run

__all__ = ["PeriodicWorker", "latest_slot", "start_due_runs"]

logger = logging.getLogger(__name__)


def latest_slot(frequency: str | None, time_of_day: time | None, now: datetime) -> datetime | None:
    """The most recent scheduled start at or before ``now`` (UTC, no daylight-saving shift)."""
    if frequency in (None, ScheduleFrequency.NONE.value) or time_of_day is None:
        return None
    if frequency == ScheduleFrequency.HOURLY.value:
        slot = now.replace(minute=time_of_day.minute, second=0, microsecond=0)
        return slot if slot <= now else slot - timedelta(hours=1)
    slot = datetime.combine(now.date(), time_of_day.replace(second=0, microsecond=0))
    return slot if slot <= now else slot - timedelta(days=1)


def start_due_runs(store: Store, *, now: datetime) -> list[str]:
    """Start a run for every ready flow whose latest schedule slot has no run yet."""
    started: list[str] = []
    with store.writing() as session:
        latest_start = (
            select(Run.flow_id, func.max(Run.start_at).label("last_start"))
            .group_by(Run.flow_id)
            .subquery()
        )
        query = (
            select(Flow, latest_start.c.last_start)
            .outerjoin(latest_start, latest_start.c.flow_id == Flow.id)
            .where(Flow.readiness_status == ReadinessStatus.READY.value)
            .options(selectinload(Flow.invitations))
        )
        for flow, last_start in session.execute(query).all():
            invitation: Invitation = flow.invitations[-1]
            if invitation.status != InvitationStatus.ACCEPTED.value:
                continue
            slot = latest_slot(invitation.schedule_frequency, invitation.schedule_time_of_day, now)
            if slot is None or (invitation.responded_at and slot <= invitation.responded_at):
                continue
            if last_start is not None and last_start >= slot:
                continue
            try:
                run = start_run(
                    session,
                    flow=flow,
                    format=invitation.destination_format or "sdsCsv",
                    trigger=RunTrigger.SCHEDULE,
                    now=now,
                )
            except RunInProgress:
                continue
            started.append(run.id)
        session.commit()
    return started


class PeriodicWorker:
    """Calls ``tick`` every ``interval_seconds`` on a daemon thread until stopped."""

    def __init__(self, tick: Callable[[], None], *, interval_seconds: float) -> None:
        self._tick = tick
        self._interval = interval_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="industrydata-scheduler", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._tick()
            except Exception:
                logger.exception("scheduled work failed; trying again at the next tick")

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
