"""Schedules are UTC with no daylight-saving shift; a slot starts one run, once."""

from __future__ import annotations

import uuid
from datetime import datetime, time

import pytest

from industrydata.runs import apply_flow_state, latest_slot, start_due_runs
from industrydata.states import Transition
from industrydata.store import Flow, Invitation, Run, Store, open_store


@pytest.mark.parametrize(
    ("frequency", "time_of_day", "now", "expected"),
    [
        ("daily", time(6, 0), datetime(2026, 3, 29, 7, 0), datetime(2026, 3, 29, 6, 0)),
        ("daily", time(6, 0), datetime(2026, 3, 29, 5, 59), datetime(2026, 3, 28, 6, 0)),
        ("daily", time(6, 0), datetime(2026, 3, 29, 6, 0), datetime(2026, 3, 29, 6, 0)),
        ("hourly", time(6, 15), datetime(2026, 3, 29, 9, 20), datetime(2026, 3, 29, 9, 15)),
        ("hourly", time(6, 15), datetime(2026, 3, 29, 9, 10), datetime(2026, 3, 29, 8, 15)),
        ("none", time(6, 0), datetime(2026, 3, 29, 9, 10), None),
        ("daily", None, datetime(2026, 3, 29, 9, 10), None),
    ],
)
def test_latest_slot(
    frequency: str, time_of_day: time | None, now: datetime, expected: datetime | None
) -> None:
    assert latest_slot(frequency, time_of_day, now) == expected


@pytest.fixture
def store(store_url: str) -> Store:
    store = open_store(store_url)
    yield store
    store.dispose()


def _accepted_flow(store: Store, accepted_at: datetime, frequency: str = "daily") -> str:
    flow = Flow(
        id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()),
        display_name="F",
        share_name="s",
        invitee_user_id=str(uuid.uuid4()),
        created_at=accepted_at,
    )
    apply_flow_state(flow, Transition.ACCEPTED, accepted_at)
    flow.invitations.append(
        Invitation(
            id=str(uuid.uuid4()),
            tenant_id=flow.tenant_id,
            invitee_user_id=flow.invitee_user_id,
            status="accepted",
            created_at=accepted_at,
            expires_at=accepted_at,
            responded_at=accepted_at,
            destination_url="file:///lake",
            destination_format="sdsCsv",
            schedule_frequency=frequency,
            schedule_time_of_day=time(6, 0),
        )
    )
    with store.writing() as session:
        session.add(flow)
        session.commit()
    return flow.id


def test_start_due_runs_starts_one_run_per_slot(store: Store) -> None:
    flow_id = _accepted_flow(store, datetime(2026, 11, 26, 12, 0))

    first = start_due_runs(store, now=datetime(2026, 11, 27, 6, 1))
    with store.writing() as session:
        session.get(Run, first[0]).status = "completed"
        session.commit()
    again = start_due_runs(store, now=datetime(2026, 11, 27, 7, 0))
    next_day = start_due_runs(store, now=datetime(2026, 11, 28, 6, 0))

    assert len(first) == 1 and again == [] and len(next_day) == 1
    with store.reading() as session:
        runs = session.query(Run).filter_by(flow_id=flow_id).all()
        assert sorted(run.trigger for run in runs) == ["schedule", "schedule"]


def test_start_due_runs_waits_for_first_slot_after_accept(store: Store) -> None:
    _accepted_flow(store, datetime(2026, 11, 27, 6, 30))
    assert start_due_runs(store, now=datetime(2026, 11, 27, 23, 0)) == []


def test_start_due_runs_ignores_on_demand_flows(store: Store) -> None:
    _accepted_flow(store, datetime(2026, 11, 20, 6, 30), frequency="none")
    assert start_due_runs(store, now=datetime(2026, 11, 27, 23, 0)) == []
