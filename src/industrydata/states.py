"""The enums of the contract (§2) and the flow state machine (§3), in one place.

Both ``sharing`` (invitations) and ``runs`` (run outcomes) move a flow's state; they do it
through the transitions named here so the table of contract §3 has one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "DestinationFormat",
    "FlowState",
    "InvitationStatus",
    "ReadinessStatus",
    "RunStatus",
    "RunTrigger",
    "ScheduleFrequency",
    "SharingState",
    "Transition",
]


class ReadinessStatus(str, Enum):
    NOT_READY = "notReady"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"
    EXPIRED = "expired"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class SharingState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    PROBLEM = "problem"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class RunStatus(str, Enum):
    RUNNING = "running"
    FAILED = "failed"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completedWithErrors"
    COMPLETED_WITH_WARNINGS = "completedWithWarnings"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class InvitationStatus(str, Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class DestinationFormat(str, Enum):
    SDS_CSV = "sdsCsv"
    DELTA = "delta"
    PARQUET = "parquet"


class ScheduleFrequency(str, Enum):
    DAILY = "daily"
    HOURLY = "hourly"
    NONE = "none"


class RunTrigger(str, Enum):
    """Why a run started (kept on the run; on-demand runs count towards the throttle)."""

    ACCEPT = "accept"
    ON_DEMAND = "onDemand"
    SCHEDULE = "schedule"


@dataclass(frozen=True)
class FlowState:
    readiness_status: ReadinessStatus
    sharing_state: SharingState


class Transition:
    """The flow states that follow each event of contract §3.

    A run cancelled by a client (``…/runs/{id}/cancel``, an extension) is no event of the
    flow: the flow keeps the state its last finished run gave it (docs/api.md).
    """

    CREATED = FlowState(ReadinessStatus.NOT_READY, SharingState.PENDING)
    ACCEPTED = FlowState(ReadinessStatus.READY, SharingState.RUNNING)
    REJECTED = FlowState(ReadinessStatus.FAILED, SharingState.PROBLEM)
    EXPIRED = FlowState(ReadinessStatus.EXPIRED, SharingState.PENDING)
    RUN_FAILED = FlowState(ReadinessStatus.READY, SharingState.PROBLEM)
    RUN_COMPLETED = FlowState(ReadinessStatus.READY, SharingState.RUNNING)
    REINVITED = FlowState(ReadinessStatus.NOT_READY, SharingState.PENDING)
    INVITEE_NOT_AUTHORIZED = FlowState(ReadinessStatus.FAILED, SharingState.PROBLEM)
