"""Persistence: engine and sessions, the service's ORM tables, migrations."""

from ._metadata import Base, metadata
from .engine import Store, create_store_engine, open_store
from .migrate import upgrade_to_head
from .models import DirectoryUser, Flow, Invitation, Run
from .sealing import CredentialSealer

__all__ = [
    "Base",
    "CredentialSealer",
    "DirectoryUser",
    "Flow",
    "Invitation",
    "Run",
    "Store",
    "create_store_engine",
    "metadata",
    "open_store",
    "upgrade_to_head",
]
