"""Baseline: the service tables and the canonical roster tables of CDM schema 0.3.2.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-27

The baseline materialises the table definitions as they stand at this revision (the
canonical ones are fixed by the CDM schema version). Any later change to a table definition
comes with its own migration file that alters the existing tables.
"""

from alembic import op

from industrydata.store import metadata

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
