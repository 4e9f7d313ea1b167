"""Migrations when several processes start at once on one PostgreSQL (production mode)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from sqlalchemy import create_engine, inspect, text

from industrydata.store import create_store_engine, upgrade_to_head


def _upgrade(url: str) -> None:
    engine = create_store_engine(url, pooled=False)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()


def test_processes_starting_together_upgrade_one_after_another(
    fresh_postgres_database: str,
) -> None:
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        for outcome in [pool.submit(_upgrade, fresh_postgres_database) for _ in range(4)]:
            outcome.result()

    engine = create_engine(fresh_postgres_database)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert len(versions) == 1
    assert {"run", "load_job", "procrastinate_jobs"} <= tables
