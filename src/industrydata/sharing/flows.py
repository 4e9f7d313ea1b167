"""The dataShareOutgoingFlow domain: create, read, update, delete, potential invitees, and
the flow's runs (list, get, start on demand, cancel).

Functions take the store and the caller and own their transaction; they raise the typed
errors of ``industrydata.errors`` and know nothing of HTTP.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..config import Settings
from ..directory import global_administrators, is_global_administrator
from ..errors import (
    InviteeIsOwner,
    InviteeNotGlobalAdministrator,
    NotFound,
    RunNotInProgress,
    RunPublishing,
    ShareNameConflict,
    StaleETag,
    TooManyRequests,
)
from ..identity import Principal
from ..runs import (
    active_run,
    apply_flow_state,
    end_cancelled,
    is_publishing,
    new_etag,
    start_run,
    utcnow,
)
from ..states import InvitationStatus, RunStatus, RunTrigger, Transition
from ..store import DirectoryUser, Flow, Invitation, Run, Store
from .validation import FlowCreate, FlowUpdate, RunCreate

__all__ = [
    "cancel_run",
    "create_flow",
    "current_invitation",
    "delete_flow",
    "get_flow",
    "get_run",
    "list_flows",
    "list_runs",
    "potential_invitees",
    "request_run",
    "update_flow",
]


def current_invitation(flow: Flow) -> Invitation | None:
    """The flow's newest invitation (older ones are revoked)."""
    return flow.invitations[-1] if flow.invitations else None


def _flow_query(tenant_id: str, *, with_runs: bool = False):  # type: ignore[no-untyped-def]
    query = select(Flow).where(Flow.tenant_id == tenant_id).options(selectinload(Flow.invitations))
    if with_runs:
        query = query.options(selectinload(Flow.runs))
    return query


def load_flow(session: Session, tenant_id: str, flow_id: str, *, with_runs: bool = False) -> Flow:
    try:
        flow_id = str(uuid.UUID(flow_id))
    except ValueError:
        raise NotFound(f"No dataShareOutgoingFlow with id '{flow_id}'.") from None
    flow = session.scalars(
        _flow_query(tenant_id, with_runs=with_runs).where(Flow.id == flow_id)
    ).first()
    if flow is None:
        raise NotFound(f"No dataShareOutgoingFlow with id '{flow_id}'.")
    return flow


def _new_invitation(flow: Flow, settings: Settings, now: datetime) -> Invitation:
    return Invitation(
        id=str(uuid.uuid4()),
        flow_id=flow.id,
        tenant_id=flow.tenant_id,
        invitee_user_id=flow.invitee_user_id,
        status=InvitationStatus.PENDING.value,
        created_at=now,
        expires_at=now + timedelta(days=settings.invitation_lifetime_days),
    )


def _check_invitee(session: Session, principal: Principal, invitee_user_id: str) -> None:
    """The invitee is a Global Administrator of the caller's tenant, and not the caller.

    The caller naming the invitee (creating the flow, or changing its invitee) is its owner
    for that act; the invitee decides where the data goes. Two people, so neither alone both
    offers the tenant's roster and chooses its destination.
    """
    if invitee_user_id == principal.object_id:
        raise InviteeIsOwner(
            "The invitee must be another Global Administrator than the caller.",
            target="inviteeUserIds",
        )
    if not is_global_administrator(
        session, tenant_id=principal.tenant_id, object_id=invitee_user_id
    ):
        raise InviteeNotGlobalAdministrator(
            f"User '{invitee_user_id}' is not a Global Administrator of this tenant.",
            target="inviteeUserIds",
        )


def _check_etag(flow: Flow, if_match: str | None, body_etag: str | None) -> None:
    for given in (if_match, body_etag):
        if given is None:
            continue
        candidates = [part.strip() for part in given.split(",")]
        if "*" in candidates:
            continue
        normalised = {part.removeprefix("W/").strip('"') for part in candidates}
        if flow.etag not in normalised:
            raise StaleETag("The eTag does not match the flow's current eTag.")


def _commit_flow(session: Session) -> None:
    """Commit; a unique-name clash found by the database becomes a 409."""
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ShareNameConflict(
            "Another flow of this tenant has this shareName.", target="shareName"
        ) from exc


def _share_name_taken(
    session: Session, tenant_id: str, share_name: str, flow_id: str | None
) -> bool:
    query = select(Flow.id).where(Flow.tenant_id == tenant_id, Flow.share_name == share_name)
    if flow_id is not None:
        query = query.where(Flow.id != flow_id)
    return session.scalars(query).first() is not None


def create_flow(
    store: Store, *, principal: Principal, request: FlowCreate, settings: Settings
) -> Flow:
    """A new flow with a pending invitation to its one invitee."""
    now = utcnow()
    with store.writing() as session:
        _check_invitee(session, principal, request.invitee_user_id)
        if _share_name_taken(session, principal.tenant_id, request.share_name, None):
            raise ShareNameConflict(
                "Another flow of this tenant has this shareName.", target="shareName"
            )
        flow = Flow(
            id=str(uuid.uuid4()),
            tenant_id=principal.tenant_id,
            display_name=request.display_name,
            share_name=request.share_name,
            invitee_user_id=request.invitee_user_id,
            created_at=now,
        )
        apply_flow_state(flow, Transition.CREATED, now)
        flow.invitations.append(_new_invitation(flow, settings, now))
        session.add(flow)
        _commit_flow(session)
        return flow


def list_flows(store: Store, *, principal: Principal, with_runs: bool = False) -> list[Flow]:
    with store.reading() as session:
        query = _flow_query(principal.tenant_id, with_runs=with_runs).order_by(
            Flow.created_at, Flow.id
        )
        return list(session.scalars(query))


def get_flow(store: Store, *, principal: Principal, flow_id: str, with_runs: bool = False) -> Flow:
    with store.reading() as session:
        return load_flow(session, principal.tenant_id, flow_id, with_runs=with_runs)


def _cancel_active_run(session: Session, flow: Flow, now: datetime, reason: str) -> None:
    run = active_run(session, flow.id)
    if run is not None:
        end_cancelled(run, now, reason)


def update_flow(
    store: Store,
    *,
    principal: Principal,
    flow_id: str,
    request: FlowUpdate,
    if_match: str | None,
    settings: Settings,
) -> Flow:
    """Apply a PATCH; a new invitee revokes the invitation and issues a new one."""
    now = utcnow()
    with store.writing() as session:
        flow = load_flow(session, principal.tenant_id, flow_id)
        _check_etag(flow, if_match, request.etag)
        if request.share_name is not None and request.share_name != flow.share_name:
            if _share_name_taken(session, flow.tenant_id, request.share_name, flow.id):
                raise ShareNameConflict(
                    "Another flow of this tenant has this shareName.", target="shareName"
                )
            flow.share_name = request.share_name
        if request.display_name is not None:
            flow.display_name = request.display_name
        if request.invitee_user_id is not None and request.invitee_user_id != flow.invitee_user_id:
            _check_invitee(session, principal, request.invitee_user_id)
            flow.invitee_user_id = request.invitee_user_id
            reinvite(session, flow, settings, now)
        else:
            flow.etag = new_etag()
            flow.modified_at = now
        _commit_flow(session)
        return flow


def reinvite(session: Session, flow: Flow, settings: Settings, now: datetime) -> None:
    """Revoke the current invitation (discarding its destination) and issue a new one."""
    old = current_invitation(flow)
    if old is not None and old.status in (
        InvitationStatus.PENDING.value,
        InvitationStatus.ACCEPTED.value,
    ):
        old.status = InvitationStatus.REVOKED.value
        old.credential_sealed = None
        old.destination_url = None
    _cancel_active_run(session, flow, now, "The flow's invitation was replaced.")
    flow.invitations.append(_new_invitation(flow, settings, now))
    apply_flow_state(flow, Transition.REINVITED, now)


def delete_flow(store: Store, *, principal: Principal, flow_id: str, if_match: str | None) -> None:
    """Remove the flow, its invitations (and credentials) and runs; delivered data stays."""
    with store.writing() as session:
        flow = load_flow(session, principal.tenant_id, flow_id)
        _check_etag(flow, if_match, None)
        session.delete(flow)
        session.commit()


def potential_invitees(store: Store, *, principal: Principal) -> list[DirectoryUser]:
    with store.reading() as session:
        return global_administrators(session, tenant_id=principal.tenant_id)


def list_runs(store: Store, *, principal: Principal, flow_id: str) -> list[Run]:
    with store.reading() as session:
        flow = load_flow(session, principal.tenant_id, flow_id)
        query = select(Run).where(Run.flow_id == flow.id).order_by(Run.start_at, Run.id)
        return list(session.scalars(query))


def _load_run(session: Session, flow: Flow, run_id: str, *, for_update: bool = False) -> Run:
    run = session.get(Run, run_id, with_for_update=for_update)
    if run is None or run.flow_id != flow.id:
        raise NotFound(f"No run with id '{run_id}' in this flow.")
    return run


def get_run(store: Store, *, principal: Principal, flow_id: str, run_id: str) -> Run:
    with store.reading() as session:
        flow = load_flow(session, principal.tenant_id, flow_id)
        return _load_run(session, flow, run_id)


def cancel_run(store: Store, *, principal: Principal, flow_id: str, run_id: str) -> Run:
    """End a running run as failed with ``runCancelled``; the flow's state stays as it is.

    A cancelled run says nothing about the flow's health (its destination, its invitee), so
    the flow keeps the state its last finished run gave it, and its eTag. The run's row is
    locked for the check, so the executor's last progress and the cancel cannot interleave.
    The caller stops the run's executor after this returns (``Service.cancel_run``).

    Raises:
        NotFound: no such flow in the caller's tenant, or no such run in the flow.
        RunNotInProgress: the run has already ended; nothing changed.
        RunPublishing: the run has written every table and is publishing; nothing changed.
    """
    now = utcnow()
    with store.writing() as session:
        flow = load_flow(session, principal.tenant_id, flow_id)
        run = _load_run(session, flow, run_id, for_update=True)
        if run.status != RunStatus.RUNNING.value:
            raise RunNotInProgress(f"The run is not in progress (it is {run.status}).")
        if is_publishing(run):
            raise RunPublishing(
                "The run has written every table and is publishing its snapshot; it can no "
                "longer be cancelled and ends within moments."
            )
        caller = "application" if principal.is_application else "user"
        end_cancelled(run, now, f"The run was cancelled by {caller} '{principal.object_id}'.")
        session.commit()
        return run


def _throttle(session: Session, flow: Flow, settings: Settings, now: datetime) -> None:
    window = timedelta(hours=settings.run_throttle_hours)
    query = select(func.min(Run.start_at), func.count(Run.id)).where(
        Run.flow_id == flow.id,
        Run.trigger == RunTrigger.ON_DEMAND.value,
        Run.start_at > now - window,
    )
    oldest, count = session.execute(query).one()
    if count >= settings.run_throttle_count:
        retry_after = max(1, math.ceil((oldest + window - now).total_seconds()))
        raise TooManyRequests(
            f"At most {settings.run_throttle_count} on-demand runs per "
            f"{settings.run_throttle_hours:g} hours; try again later.",
            retry_after_seconds=retry_after,
        )


def request_run(
    store: Store, *, principal: Principal, flow_id: str, request: RunCreate, settings: Settings
) -> Run:
    """Start an on-demand run now (committed as running; the caller dispatches it)."""
    now = utcnow()
    with store.writing() as session:
        flow = load_flow(session, principal.tenant_id, flow_id)
        invitation = current_invitation(flow)
        format = (
            invitation.destination_format
            if invitation and invitation.destination_format
            else "sdsCsv"
        )
        if flow.readiness_status == "ready" and active_run(session, flow.id) is None:
            _throttle(session, flow, settings, now)
        run = start_run(
            session,
            flow=flow,
            format=format,
            trigger=RunTrigger.ON_DEMAND,
            now=now,
            display_name=request.display_name,
        )
        session.commit()
        return run
