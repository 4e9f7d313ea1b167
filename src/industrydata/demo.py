"""The demo tenant that ``make run`` serves: two Global Administrators and a small roster."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .canonical.generator import generate_sds_csv
from .canonical.ingest import load_sds_csv
from .canonical import count_rows
from .config import Settings
from .directory import add_user
from .store import open_store, upgrade_to_head

__all__ = ["DEMO_ADMINS", "DEMO_TENANT_ID", "DemoUser", "seed_demo"]

DEMO_TENANT_ID = "8a1f6c2e-4b7d-4e0a-9c35-2d6f1b8e7a01"
DEMO_STUDENTS = 120
DEMO_SEED = 2026


@dataclass(frozen=True)
class DemoUser:
    object_id: str
    display_name: str
    user_principal_name: str
    is_global_admin: bool


DEMO_ADMINS = (
    DemoUser("3f2b9c4d-1a6e-4f80-b7d2-5c9e0a1b2c31", "Adele Vance", "adele@contoso.example", True),
    DemoUser("7c1d8e2f-3b4a-4c59-a6e7-8f9d0b1c2d42", "Megan Bowen", "megan@contoso.example", True),
)
DEMO_TEACHER = DemoUser(
    "b5e4d3c2-a1f0-4e9d-8c7b-6a5f4e3d2c53", "Lee Gu", "lee@contoso.example", False
)


def seed_demo(settings: Settings) -> int:
    """Create the demo tenant's directory and roster (idempotent); returns rows in the store."""
    store = open_store(settings.effective_database_url)
    try:
        upgrade_to_head(store.write_engine)
        with store.writing() as session:
            for user in (*DEMO_ADMINS, DEMO_TEACHER):
                add_user(
                    session,
                    tenant_id=DEMO_TENANT_ID,
                    object_id=user.object_id,
                    display_name=user.display_name,
                    user_principal_name=user.user_principal_name,
                    is_global_admin=user.is_global_admin,
                )
            session.commit()
        if count_rows(store.engine, DEMO_TENANT_ID).get("Person", 0) == 0:
            with tempfile.TemporaryDirectory() as folder:
                generate_sds_csv(Path(folder), students=DEMO_STUDENTS, seed=DEMO_SEED)
                load_sds_csv(store.write_engine, Path(folder), tenant_id=DEMO_TENANT_ID)
        return sum(count_rows(store.engine, DEMO_TENANT_ID).values())
    finally:
        store.dispose()
