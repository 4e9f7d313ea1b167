"""Run the Alembic migrations programmatically (the service upgrades its store at start)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

__all__ = ["schema_at_head", "upgrade_to_head"]

_SCRIPT_LOCATION = Path(__file__).with_name("migrations")
_VERSION_TABLE = "alembic_version"

_MIGRATION_LOCK_KEY = 0x696E6475
"""PostgreSQL advisory lock held while upgrading: processes starting together upgrade one
after another (the later ones find the schema at head)."""


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    config.attributes["engine"] = engine
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Bring the store's schema to the newest revision (idempotent, one process at a time)."""
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), "head")
        return
    with engine.connect() as guard:
        guard.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        try:
            command.upgrade(alembic_config(engine), "head")
        finally:
            guard.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})


@cache
def _head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory(str(_SCRIPT_LOCATION)).get_heads())


def schema_at_head(connection: Connection) -> bool:
    """Whether the store's schema is at the newest revision (no migration pending): a
    process serving an older schema would fail on what the code expects. Reads Alembic's
    version table directly (Alembic's migration context logs two lines each time)."""
    if not inspect(connection).has_table(_VERSION_TABLE):
        return False
    current = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalars()
    return frozenset(current) == _head_revisions()
