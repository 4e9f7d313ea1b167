"""Graph JSON of the entities (contract §2, §3, §5): one function per type."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..states import DestinationFormat
from ..store import DirectoryUser, Flow, Invitation, Run

__all__ = [
    "FLOW_TYPE",
    "INVITATION_TYPE",
    "RUN_TYPE",
    "flow_json",
    "graph_datetime",
    "identity_json",
    "invitation_json",
    "run_json",
]

FLOW_TYPE = "#microsoft.graph.industryData.dataShareOutgoingFlow"
RUN_TYPE = "#microsoft.graph.industryData.outgoingFlowRun"
INVITATION_TYPE = "#microsoft.graph.industryData.dataShareInvitation"
IDENTITY_TYPE = "#microsoft.graph.identity"


def graph_datetime(value: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z`` (store times are naive UTC)."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds") + "Z"


def invitation_json(invitation: Invitation, *, deletion_vectors_default: bool) -> dict[str, Any]:
    """The invitation; the destination credential is write-only and never appears.

    A ``delta`` destination shows the options its runs use: the accept's choice, else the
    server's default (``deletion_vectors_default``), so an administrator sees what the
    consumer's readers must support.
    """
    destination = None
    if invitation.destination_url is not None:
        delta_options = None
        if invitation.destination_format == DestinationFormat.DELTA.value:
            delta_options = {
                "deletionVectors": invitation.deletion_vectors(deletion_vectors_default),
                "changeDataFeed": invitation.change_data_feed(),
            }
        destination = {
            "url": invitation.destination_url,
            "format": invitation.destination_format,
            "deltaOptions": delta_options,
        }
    schedule = None
    if invitation.schedule_frequency is not None:
        time_of_day = invitation.schedule_time_of_day
        schedule = {
            "frequency": invitation.schedule_frequency,
            "timeOfDay": time_of_day.strftime("%H:%M") if time_of_day else None,
        }
    return {
        "@odata.type": INVITATION_TYPE,
        "id": invitation.id,
        "status": invitation.status,
        "inviteeUserId": invitation.invitee_user_id,
        "createdDateTime": graph_datetime(invitation.created_at),
        "expirationDateTime": graph_datetime(invitation.expires_at),
        "respondedDateTime": graph_datetime(invitation.responded_at),
        "destination": destination,
        "schedule": schedule,
    }


def run_json(run: Run) -> dict[str, Any]:
    return {
        "@odata.type": RUN_TYPE,
        "id": run.id,
        "displayName": run.display_name,
        "startDateTime": graph_datetime(run.start_at),
        "endDateTime": graph_datetime(run.end_at),
        "status": run.status,
        "blockingError": run.blocking_error,
        "statistics": run.statistics,
    }


def flow_json(
    flow: Flow, *, deletion_vectors_default: bool, expand: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The flow; ``runs`` and ``invitation`` only when expanded (they must be loaded)."""
    body: dict[str, Any] = {
        "@odata.type": FLOW_TYPE,
        "id": flow.id,
        "eTag": flow.etag,
        "displayName": flow.display_name,
        "readinessStatus": flow.readiness_status,
        "inviteeUserIds": [flow.invitee_user_id],
        "shareName": flow.share_name,
        "sharingState": flow.sharing_state,
    }
    if "runs" in expand:
        body["runs"] = [run_json(run) for run in flow.runs]
    if "invitation" in expand:
        body["invitation"] = (
            invitation_json(
                flow.invitations[-1], deletion_vectors_default=deletion_vectors_default
            )
            if flow.invitations
            else None
        )
    return body


def identity_json(user: DirectoryUser) -> dict[str, Any]:
    return {"@odata.type": IDENTITY_TYPE, "id": user.object_id, "displayName": user.display_name}
