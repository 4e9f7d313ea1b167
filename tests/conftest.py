"""Shared fixtures: settings on a temporary data dir, and a migrated store on each database.

The ``store_url`` fixture runs every store-backed test on SQLite, and on PostgreSQL too when
``INDUSTRYDATA_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it when a server answers); each
test session gets its own PostgreSQL database, dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from industrydata.config import Settings
from industrydata.store import create_store_engine, upgrade_to_head

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference"
POSTGRES_URL_ENV = "INDUSTRYDATA_TEST_POSTGRES_URL"


def _postgres_params() -> list:
    skip = pytest.mark.skip(reason=f"PostgreSQL not configured: set {POSTGRES_URL_ENV}")
    marks = [pytest.mark.postgres] + ([] if os.environ.get(POSTGRES_URL_ENV) else [skip])
    return ["sqlite", pytest.param("postgresql", marks=marks)]


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (psycopg 3 URL)."""
    server = make_url(os.environ[POSTGRES_URL_ENV]).set(drivername="postgresql+psycopg")
    name = f"industrydata_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=_postgres_params())
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty store on each configured database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_database_url")
    engine = create_store_engine(url)
    upgrade_to_head(engine)
    try:
        yield url
    finally:
        if request.param == "postgresql":
            _truncate_all(engine)
        engine.dispose()


def _truncate_all(engine: Engine) -> None:
    from industrydata.store import metadata

    with engine.begin() as connection:
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """The store's engine, without a connection pool.

    Tests also read the store with ADBC, whose SQLite is a second copy of the library in this
    process; two copies must never have the same WAL database open at once (their POSIX locks
    are per process), so no Python sqlite3 connection stays open between statements.
    """
    engine = create_store_engine(store_url, pooled=False)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    """Settings on a temporary data dir and the parametrised store."""
    return Settings(data_dir=tmp_path / "data", database_url=store_url)


@pytest.fixture
def reference_dir() -> Path:
    if not REFERENCE_DIR.is_dir():
        pytest.skip(
            f"reference data absent: expected {REFERENCE_DIR} (the project's shared/ folder)"
        )
    return REFERENCE_DIR
