"""Delta options: the deletion-vector choice of an accepted invitation.

Revision ID: 0005_delta_options
Revises: 0004_load_fence
Create Date: 2026-12-09

Adds the nullable ``invitation.delta_deletion_vectors`` (the accept body's
``destination.deltaOptions.deletionVectors``). Invitations accepted before this revision get
NULL: their runs follow the server's default, ``INDUSTRYDATA_DELTA_DELETION_VECTORS``. The
baseline creates the tables as the code defines them, so a store created by it already has
the column: the step adds it only when missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_delta_options"
down_revision = "0004_load_fence"
branch_labels = None
depends_on = None

_TABLE = "invitation"
_COLUMN = "delta_deletion_vectors"


def upgrade() -> None:
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(_TABLE)}
    if _COLUMN not in present:
        op.add_column(_TABLE, sa.Column(_COLUMN, sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column(_TABLE, _COLUMN)
