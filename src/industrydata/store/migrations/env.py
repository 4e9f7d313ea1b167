"""Alembic environment: migrations run on the engine handed over by ``upgrade_to_head``."""

from __future__ import annotations

from alembic import context

from industrydata.canonical import sql as _canonical_sql  # noqa: F401  (registers the tables)
from industrydata.store import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
