"""Delta options: the deletion-vector and change-data-feed choices of an accepted invitation.

Revision ID: 0005_delta_options
Revises: 0004_load_fence
Create Date: 2026-12-09

Adds the nullable ``invitation.delta_deletion_vectors`` and ``delta_change_data_feed`` (the
accept body's ``destination.deltaOptions``). Invitations accepted before this revision get
NULL: their runs follow the server's default, ``INDUSTRYDATA_DELTA_DELETION_VECTORS``, and
write the change data feed. The baseline creates the tables as the code defines them, so a
store created by it already has the columns: the step adds each only when missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_delta_options"
down_revision = "0004_load_fence"
branch_labels = None
depends_on = None

_TABLE = "invitation"
_COLUMNS = ("delta_deletion_vectors", "delta_change_data_feed")


def upgrade() -> None:
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(_TABLE)}
    for column in _COLUMNS:
        if column not in present:
            op.add_column(_TABLE, sa.Column(column, sa.Boolean(), nullable=True))


def downgrade() -> None:
    for column in _COLUMNS:
        op.drop_column(_TABLE, column)
