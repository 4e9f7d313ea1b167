"""Run the Alembic migrations programmatically (the service upgrades its store at start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

__all__ = ["upgrade_to_head"]

_SCRIPT_LOCATION = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    config.attributes["engine"] = engine
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Bring the store's schema to the newest revision (idempotent)."""
    command.upgrade(alembic_config(engine), "head")
