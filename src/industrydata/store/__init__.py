"""Persistence: engine and sessions, the service's ORM tables, migrations."""

from ._metadata import Base, metadata
from .claims import ClaimRefusal, claim_destination, claimed_destination, find_conflict
from .engine import (
    MAINTENANCE_LOCK_WAIT_SECONDS,
    Store,
    create_store_engine,
    is_lock_contention,
    open_store,
    retry_while_busy,
)
from .migrate import schema_at_head, upgrade_to_head
from .models import DestinationClaim, DirectoryUser, Flow, Invitation, LoadJob, Run
from .sealing import CredentialSealer

__all__ = [
    "MAINTENANCE_LOCK_WAIT_SECONDS",
    "Base",
    "ClaimRefusal",
    "CredentialSealer",
    "DestinationClaim",
    "DirectoryUser",
    "Flow",
    "Invitation",
    "LoadJob",
    "Run",
    "Store",
    "claim_destination",
    "claimed_destination",
    "create_store_engine",
    "find_conflict",
    "is_lock_contention",
    "metadata",
    "open_store",
    "retry_while_busy",
    "schema_at_head",
    "upgrade_to_head",
]
