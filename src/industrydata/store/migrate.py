"""Run the Alembic migrations programmatically (the service upgrades its store at start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

__all__ = ["upgrade_to_head"]

_SCRIPT_LOCATION = Path(__file__).with_name("migrations")

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
