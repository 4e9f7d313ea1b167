"""Task queue: procrastinate's schema on PostgreSQL, and the table of queued loads.

Revision ID: 0006_task_queue
Revises: 0005_delta_options
Create Date: 2026-12-10

Production mode runs, imports and the periodic work as procrastinate jobs, kept in the same
PostgreSQL database as the store, so a run and its job are committed in one transaction.
The schema is the one the pinned procrastinate version ships (``procrastinate.schema``); an
upgrade of procrastinate that changes it comes with a revision of ours applying its
migration scripts. SQLite stores (embedded mode only) get no procrastinate schema.

``load_job`` records loads queued for workers (``industrydata import ... --enqueue``) and
their progress; the baseline creates it in a new store, this step in an older one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

from industrydata.store.models import LoadJob

revision = "0006_task_queue"
down_revision = "0005_delta_options"
branch_labels = None
depends_on = None

_TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)
_TYPES = (
    "procrastinate_job_status",
    "procrastinate_job_event_type",
    "procrastinate_job_to_defer_v1",
)


def upgrade() -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table(LoadJob.__tablename__):
        LoadJob.__table__.create(bind)
    if bind.dialect.name != "postgresql":
        return
    if sa.inspect(bind).has_table("procrastinate_jobs"):
        return
    # psycopg runs a parameterless script of several statements as one simple query.
    bind.connection.driver_connection.execute(SchemaManager.get_schema())


def downgrade() -> None:
    bind = op.get_bind()
    LoadJob.__table__.drop(bind)
    if bind.dialect.name != "postgresql":
        return
    functions = list(
        bind.execute(
            sa.text(
                "SELECT p.oid::regprocedure::text FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%'"
            )
        ).scalars()
    )
    for table in _TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    for function in functions:
        op.execute(f"DROP FUNCTION IF EXISTS {function} CASCADE")
    for type_name in _TYPES:
        op.execute(f"DROP TYPE IF EXISTS {type_name} CASCADE")
