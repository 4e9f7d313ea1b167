"""Persistence: engine and sessions, the service's ORM tables, migrations."""

from ._metadata import Base, metadata
from .claims import ClaimRefusal, claim_destination, claimed_destination, find_conflict
from .engine import Store, create_store_engine, open_store
from .migrate import upgrade_to_head
from .models import DestinationClaim, DirectoryUser, Flow, Invitation, Run
from .sealing import CredentialSealer

__all__ = [
    "Base",
    "ClaimRefusal",
    "CredentialSealer",
    "DestinationClaim",
    "DirectoryUser",
    "Flow",
    "Invitation",
    "Run",
    "Store",
    "claim_destination",
    "claimed_destination",
    "create_store_engine",
    "find_conflict",
    "metadata",
    "open_store",
    "upgrade_to_head",
]
