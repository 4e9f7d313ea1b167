"""Which flow may use a destination: the first flow that accepted it, until it is deleted.

The rule and its table are ``store.claims``; this module turns a refusal into the error the
invitee sees. A flow of the same tenant is named (409 ``destinationInUse``); a flow of another
tenant is not: the invitee only learns that the destination cannot be used (400), the same
answer whatever holds it.

A flow keeps its claim through resends, rejections and expiry (its snapshots are still in
the destination) and moves it when its invitee accepts another destination; re-accepting the
same destination, or one inside or around its own, is always allowed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..errors import DestinationInUse, IndustryDataError, InvalidDestination
from ..lake import DestinationIdentity, open_destination, parse_destination
from ..runs import utcnow
from ..states import InvitationStatus
from ..store import (
    ClaimRefusal,
    CredentialSealer,
    DestinationClaim,
    Flow,
    Invitation,
    Store,
    claim_destination,
    find_conflict,
)

__all__ = ["check_destination_free", "claim_accepted_destinations", "claim_flow_destination"]

logger = logging.getLogger(__name__)


def check_destination_free(session: Session, flow: Flow, identity: DestinationIdentity) -> None:
    """Refuse early (before probing it) a destination another flow holds; the claim itself
    is ``claim_flow_destination``, in the accept's write transaction."""
    _raise_for(
        find_conflict(
            session,
            flow_id=flow.id,
            tenant_id=flow.tenant_id,
            namespace=identity.namespace,
            path=identity.path,
        )
    )


def claim_flow_destination(
    session: Session, flow: Flow, identity: DestinationIdentity, now: datetime
) -> None:
    """Make ``identity`` the flow's destination, or raise when another flow holds it.

    Raises:
        DestinationInUse: a flow of the same tenant holds an overlapping destination.
        InvalidDestination: a flow of another tenant does (without saying so).
    """
    _raise_for(
        claim_destination(
            session,
            flow_id=flow.id,
            tenant_id=flow.tenant_id,
            namespace=identity.namespace,
            path=identity.path,
            now=now,
        )
    )


def claim_accepted_destinations(
    store: Store, *, settings: Settings, sealer: CredentialSealer
) -> int:
    """Claim the destinations of flows accepted before claims existed, oldest acceptance
    first; returns how many were claimed. A flow whose destination overlaps an older one
    gets no claim, and its runs fail until its invitee accepts another destination."""
    with store.reading() as session:
        unclaimed = session.execute(
            select(
                Invitation.flow_id,
                Invitation.destination_url,
                Invitation.destination_format,
                Invitation.credential_sealed,
            )
            .join(Flow, Flow.id == Invitation.flow_id)
            .outerjoin(DestinationClaim, DestinationClaim.flow_id == Invitation.flow_id)
            .where(
                Invitation.status == InvitationStatus.ACCEPTED.value,
                Invitation.destination_url.is_not(None),
                DestinationClaim.flow_id.is_(None),
            )
            .order_by(Invitation.responded_at, Flow.created_at)
        ).all()
    claimed = 0
    for flow_id, url, format, sealed in unclaimed:
        try:
            spec = parse_destination(
                url, format=format or "sdsCsv", credential=sealer.open(sealed) if sealed else None
            )
            identity = open_destination(
                spec,
                allowed_local_roots=settings.allowed_local_roots,
                allowed_storage_endpoints=settings.allowed_storage_endpoints,
            ).identity()
            with store.writing() as session:
                flow = session.get(Flow, flow_id)
                if flow is None:
                    continue
                claim_flow_destination(session, flow, identity, utcnow())
                session.commit()
            claimed += 1
        except (IndustryDataError, ValueError) as error:
            logger.warning("flow %s keeps no destination claim: %s", flow_id, error)
    return claimed


def _raise_for(refusal: ClaimRefusal | None) -> None:
    if refusal is ClaimRefusal.SAME_TENANT:
        raise DestinationInUse(
            "Another flow of this tenant already uses this destination, or a folder inside "
            "or around it; choose another one.",
            target="url",
        )
    if refusal is ClaimRefusal.OTHER_TENANT:
        raise InvalidDestination(
            "This destination cannot be used; choose another folder or prefix.", target="url"
        )
