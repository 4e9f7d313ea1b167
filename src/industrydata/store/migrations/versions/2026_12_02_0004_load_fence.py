"""The load fence: ``canonical_loads_applying``.

Revision ID: 0004_load_fence
Revises: 0003_destination_claims
Create Date: 2026-12-02

On SQLite a load applies its rows in short transactions so other writers are not kept
waiting (``canonical.ingest``); while it does, its tenant has a row in this table and exports
of the tenant wait. The baseline creates the tables as the code defines them, so a store
created by it already has this one: the step creates it only when missing.
"""

from __future__ import annotations

from alembic import op

from industrydata.canonical.sql import CANONICAL_LOADS_APPLYING

revision = "0004_load_fence"
down_revision = "0003_destination_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    CANONICAL_LOADS_APPLYING.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    CANONICAL_LOADS_APPLYING.drop(op.get_bind(), checkfirst=True)
