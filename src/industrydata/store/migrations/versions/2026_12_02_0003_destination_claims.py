"""Destination claims: the table recording which flow holds which destination.

Revision ID: 0003_destination_claims
Revises: 0002_change_tracking
Create Date: 2026-12-02

Adds ``destination_claim`` (``store.claims``): one row per flow that accepted a destination,
deleted with its flow. The baseline creates the tables as the code defines them, so a store
created by it already has this one: the step creates it only when missing.

Flows accepted before this revision get their claims when the service next starts
(``sharing.claims.claim_accepted_destinations``), not here: a destination's identity is the
resolved local folder or the blob endpoint, and the endpoint of an ``az://`` destination is
in its sealed connection string, which only the service can open. Claims are given in the
order the flows were accepted; a flow whose destination overlaps an older flow's gets none,
and its runs fail with ``destinationInUse`` until its invitee accepts another destination.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_destination_claims"
down_revision = "0002_change_tracking"
branch_labels = None
depends_on = None


_TABLE = "destination_claim"


def upgrade() -> None:
    if _TABLE in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        _TABLE,
        sa.Column(
            "flow_id",
            sa.String(36),
            sa.ForeignKey("flow.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table(_TABLE)
