"""Destination claims: a destination belongs to the first flow that accepted it.

Two destinations overlap when they are in the same namespace (a file system, or one blob
container at one endpoint) and one's path equals the other's or is a folder above it, by
whole components (``lake/a`` holds ``lake/a/b`` but not ``lake/ab``). A flow holds one claim,
which it may move; the claim goes with the flow when the flow is deleted.

Claims are checked and written in one write transaction that no other claim can interleave
with: SQLite serialises write transactions (``BEGIN IMMEDIATE``), and on PostgreSQL the
transaction first takes an advisory lock that every claim takes, so of two accepts racing
for overlapping destinations exactly one wins.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .models import DestinationClaim

__all__ = ["ClaimRefusal", "claim_destination", "claimed_destination", "find_conflict"]

_CLAIMS_LOCK = 0x1D_C1A1  # the PostgreSQL advisory lock key every claim takes


class ClaimRefusal(enum.Enum):
    """Why a destination cannot be claimed: whose flow holds an overlapping one."""

    SAME_TENANT = "same tenant"
    OTHER_TENANT = "other tenant"


def find_conflict(
    session: Session, *, flow_id: str, tenant_id: str, namespace: str, path: str
) -> ClaimRefusal | None:
    """Whether another flow's claim overlaps; a same-tenant conflict is reported first."""
    claims = session.execute(
        select(DestinationClaim.tenant_id, DestinationClaim.path).where(
            DestinationClaim.namespace == namespace, DestinationClaim.flow_id != flow_id
        )
    )
    owners = {owner for owner, claimed in claims if _overlap(claimed, path)}
    if tenant_id in owners:
        return ClaimRefusal.SAME_TENANT
    return ClaimRefusal.OTHER_TENANT if owners else None


def claim_destination(
    session: Session,
    *,
    flow_id: str,
    tenant_id: str,
    namespace: str,
    path: str,
    now: datetime,
) -> ClaimRefusal | None:
    """Record that the flow holds the destination (replacing its previous claim), unless
    another flow's claim overlaps it. Call in a write transaction; the caller commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIMS_LOCK})
    refusal = find_conflict(
        session, flow_id=flow_id, tenant_id=tenant_id, namespace=namespace, path=path
    )
    if refusal is not None:
        return refusal
    claim = session.get(DestinationClaim, flow_id) or DestinationClaim(flow_id=flow_id)
    claim.tenant_id = tenant_id
    claim.namespace = namespace
    claim.path = path
    claim.claimed_at = now
    session.add(claim)
    session.flush()
    return None


def claimed_destination(session: Session, flow_id: str) -> tuple[str, str] | None:
    """The namespace and path the flow holds, if any."""
    claim = session.get(DestinationClaim, flow_id)
    return (claim.namespace, claim.path) if claim is not None else None


def _overlap(first: str, second: str) -> bool:
    mine = [part for part in first.split("/") if part]
    theirs = [part for part in second.split("/") if part]
    shorter = min(len(mine), len(theirs))
    return mine[:shorter] == theirs[:shorter]
