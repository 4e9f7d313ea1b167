"""The dataShareOutgoingFlow domain: flows, invitations, on-demand runs, state transitions."""

from .authorization import authorize_caller
from .claims import claim_accepted_destinations
from .flows import (
    cancel_run,
    create_flow,
    current_invitation,
    delete_flow,
    get_flow,
    get_run,
    list_flows,
    list_runs,
    potential_invitees,
    request_run,
    update_flow,
)
from .invitations import (
    accept_invitation,
    expire_pending_invitations,
    get_invitation,
    reject_invitation,
    resend_invitation,
)
from .validation import (
    AcceptRequest,
    FlowCreate,
    FlowUpdate,
    RunCreate,
    parse_accept,
    parse_flow_create,
    parse_flow_update,
    parse_run_create,
)

__all__ = [
    "AcceptRequest",
    "FlowCreate",
    "FlowUpdate",
    "RunCreate",
    "accept_invitation",
    "authorize_caller",
    "cancel_run",
    "claim_accepted_destinations",
    "create_flow",
    "current_invitation",
    "delete_flow",
    "expire_pending_invitations",
    "get_flow",
    "get_invitation",
    "get_run",
    "list_flows",
    "list_runs",
    "parse_accept",
    "parse_flow_create",
    "parse_flow_update",
    "parse_run_create",
    "potential_invitees",
    "reject_invitation",
    "request_run",
    "resend_invitation",
    "update_flow",
]
