"""Invitations: the invitee accepts (mapping a destination) or rejects; the owner resends.

Accepting claims the destination for the flow (``claims``), probes it before anything is
stored, seals the credential, and starts the flow's first run.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..config import Settings
from ..directory import is_global_administrator
from ..errors import AccessDenied, InvitationNotPending, NotFound
from ..identity import Principal
from ..lake import open_destination, parse_destination
from ..runs import apply_flow_state, start_run, utcnow
from ..states import InvitationStatus, RunTrigger, ScheduleFrequency, Transition
from ..store import CredentialSealer, Flow, Invitation, Run, Store
from .claims import check_destination_free, claim_flow_destination
from .flows import current_invitation, load_flow, reinvite
from .validation import AcceptRequest

__all__ = [
    "accept_invitation",
    "expire_pending_invitations",
    "get_invitation",
    "reject_invitation",
    "resend_invitation",
]


def _current(flow: Flow) -> Invitation:
    invitation = current_invitation(flow)
    if invitation is None:
        raise NotFound("The flow has no invitation.")
    return invitation


def get_invitation(store: Store, *, principal: Principal, flow_id: str) -> Invitation:
    with store.reading() as session:
        return _current(load_flow(session, principal.tenant_id, flow_id))


def _check_invitee(session: Session, principal: Principal, flow: Flow) -> None:
    """The caller is the invitee, signed in (not an application), and still a Global
    Administrator: the role the invitee was chosen for is checked again at the answer."""
    if (
        principal.is_application
        or principal.object_id != flow.invitee_user_id
        or principal.tenant_id != flow.tenant_id
    ):
        raise AccessDenied("Only the invitee of this flow, signed in, can answer its invitation.")
    if not is_global_administrator(
        session, tenant_id=flow.tenant_id, object_id=flow.invitee_user_id
    ):
        raise AccessDenied(
            "The invitee no longer holds the Global Administrator role of this tenant."
        )


def _check_pending(invitation: Invitation, flow: Flow, now: datetime) -> None:
    if invitation.status == InvitationStatus.PENDING.value and invitation.expires_at <= now:
        invitation.status = InvitationStatus.EXPIRED.value
        apply_flow_state(flow, Transition.EXPIRED, now)
    if invitation.status != InvitationStatus.PENDING.value:
        raise InvitationNotPending(f"The invitation is {invitation.status}, not pending.")


def _answerable(
    session: Session, principal: Principal, flow_id: str, now: datetime
) -> tuple[Flow, Invitation]:
    """The flow and its invitation, which the caller (the invitee) may answer now."""
    flow = load_flow(session, principal.tenant_id, flow_id)
    _check_invitee(session, principal, flow)
    invitation = _current(flow)
    _check_pending(invitation, flow, now)
    return flow, invitation


def accept_invitation(
    store: Store,
    *,
    principal: Principal,
    flow_id: str,
    request: AcceptRequest,
    settings: Settings,
    sealer: CredentialSealer,
) -> tuple[Invitation, Run]:
    """Accept and map a destination; returns the accepted invitation and the first run."""
    with store.reading() as session:
        flow = load_flow(session, principal.tenant_id, flow_id)
        _check_invitee(session, principal, flow)
        if _current(flow).status != InvitationStatus.PENDING.value:
            raise InvitationNotPending(f"The invitation is {_current(flow).status}, not pending.")
    spec = parse_destination(
        request.destination_url, format=request.format.value, credential=request.credential
    )
    destination = open_destination(
        spec,
        allowed_local_roots=settings.allowed_local_roots,
        allowed_storage_endpoints=settings.allowed_storage_endpoints,
    )
    identity = destination.identity()
    with store.reading() as session:
        check_destination_free(session, load_flow(session, principal.tenant_id, flow_id), identity)
    destination.probe()

    now = utcnow()
    with store.writing() as session:
        flow, invitation = _answerable(session, principal, flow_id, now)
        claim_flow_destination(session, flow, identity, now)
        invitation.status = InvitationStatus.ACCEPTED.value
        invitation.responded_at = now
        invitation.destination_url = request.destination_url
        invitation.destination_format = request.format.value
        invitation.delta_deletion_vectors = request.delta_deletion_vectors
        invitation.delta_change_data_feed = request.delta_change_data_feed
        invitation.credential_sealed = (
            sealer.seal(request.credential) if request.credential else None
        )
        invitation.schedule_frequency = request.schedule_frequency.value
        invitation.schedule_time_of_day = (
            None
            if request.schedule_frequency is ScheduleFrequency.NONE
            else request.time_of_day or settings.default_schedule_time
        )
        apply_flow_state(flow, Transition.ACCEPTED, now)
        run = start_run(
            session, flow=flow, format=request.format.value, trigger=RunTrigger.ACCEPT, now=now
        )
        session.commit()
        return invitation, run


def reject_invitation(store: Store, *, principal: Principal, flow_id: str) -> Invitation:
    now = utcnow()
    with store.writing() as session:
        flow, invitation = _answerable(session, principal, flow_id, now)
        invitation.status = InvitationStatus.REJECTED.value
        invitation.responded_at = now
        apply_flow_state(flow, Transition.REJECTED, now)
        session.commit()
        return invitation


def resend_invitation(
    store: Store, *, principal: Principal, flow_id: str, settings: Settings
) -> Invitation:
    """Revoke the current invitation and issue a new pending one to the same invitee."""
    now = utcnow()
    with store.writing() as session:
        flow = load_flow(session, principal.tenant_id, flow_id)
        reinvite(session, flow, settings, now)
        session.commit()
        return _current(flow)


def expire_pending_invitations(store: Store, *, now: datetime) -> int:
    """Expire every pending invitation past its expiry (the scheduler calls this)."""
    with store.writing() as session:
        query = (
            select(Invitation)
            .where(
                Invitation.status == InvitationStatus.PENDING.value, Invitation.expires_at <= now
            )
            .options(selectinload(Invitation.flow).selectinload(Flow.invitations))
        )
        expired = 0
        for invitation in session.scalars(query):
            if current_invitation(invitation.flow) is invitation:
                apply_flow_state(invitation.flow, Transition.EXPIRED, now)
            invitation.status = InvitationStatus.EXPIRED.value
            expired += 1
        session.commit()
    return expired
