"""Shared fixtures: settings on a temporary data dir, and a migrated store on each database.

The ``store_url`` fixture runs every store-backed test on SQLite, and on PostgreSQL too when
``INDUSTRYDATA_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it when a server answers); each
test session gets its own PostgreSQL database, dropped at the end. Migrating costs more than
most tests: a SQLite store is a copy of one migrated once per session, and after each test
the rows of the PostgreSQL database are deleted.

The ``azurite`` fixture starts the Azurite blob emulator that ``make test`` installs into
``node_modules/`` (``package.json``), once per test process, on a free loopback port;
``azure_container`` gives each test a fresh container in it.

After every test, each Delta table it left in its ``tmp_path`` must pass the protocol
validator (``tests/lake/delta_protocol.py``); a test that writes broken logs on purpose is
marked ``invalid_delta_logs``. Tables in ``tmp_path_factory`` folders are validated by the
tests that write them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from industrydata.config import Settings
from industrydata.store import create_store_engine, upgrade_to_head
from tests.lake.delta_protocol import delta_tables, validate_table

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference"
POSTGRES_URL_ENV = "INDUSTRYDATA_TEST_POSTGRES_URL"
AZURITE_BLOB = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "azurite-blob"
# Azurite's development account: its name and key are public, fixed by the emulator.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_START_SECONDS = 30.0


@pytest.fixture(autouse=True)
def delta_logs_follow_the_protocol(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test (at teardown) when a Delta log it left in ``tmp_path`` breaks a rule."""
    yield
    root = (request.node.funcargs or {}).get("tmp_path")
    if root is None or request.node.get_closest_marker("invalid_delta_logs"):
        return
    problems = [
        f"{table.relative_to(root)}: {problem}"
        for table in delta_tables(root)
        for problem in validate_table(table)
    ]
    if problems:
        pytest.fail("Delta logs break the protocol:\n" + "\n".join(problems), pytrace=False)


def _postgres_params() -> list:
    skip = pytest.mark.skip(reason=f"PostgreSQL not configured: set {POSTGRES_URL_ENV}")
    marks = [pytest.mark.postgres] + ([] if os.environ.get(POSTGRES_URL_ENV) else [skip])
    return ["sqlite", pytest.param("postgresql", marks=marks)]


@contextmanager
def _new_postgres_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database created for the block and dropped after it (psycopg 3 URL)."""
    server = make_url(os.environ[POSTGRES_URL_ENV]).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (psycopg 3 URL)."""
    with _new_postgres_database("industrydata_test") as url:
        yield url


@pytest.fixture
def fresh_postgres_database() -> Iterator[str]:
    """An empty PostgreSQL database of its own, never migrated (psycopg 3 URL)."""
    if not os.environ.get(POSTGRES_URL_ENV):
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_URL_ENV}")
    with _new_postgres_database("industrydata_fresh") as url:
        yield url


POSTGRES_ONLY = _postgres_params()[1:]
"""``store_url`` parameters of a test about PostgreSQL alone:
``@pytest.mark.parametrize("store_url", POSTGRES_ONLY, indirect=True)``."""

SQLITE_ONLY = _postgres_params()[:1]
"""``store_url`` parameters of a test whose outcome does not depend on the store's database
(say why next to it), run on SQLite alone."""


@pytest.fixture(scope="session")
def migrated_sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store file that Alembic brought to head, once per test process.

    Its last connection closed, so the WAL is checkpointed into the file and gone: a copy of
    the file is the whole store."""
    path = tmp_path_factory.mktemp("migrated-sqlite") / "store.db"
    engine = create_store_engine(f"sqlite:///{path}", pooled=False)
    upgrade_to_head(engine)
    engine.dispose()
    leftovers = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]
    assert not any(leftover.exists() for leftover in leftovers), leftovers
    return path


@pytest.fixture(scope="session")
def postgres_head_revision(postgres_database_url: str) -> str:
    """Migrates the session's PostgreSQL database; the revision it reached (the head)."""
    engine = create_store_engine(postgres_database_url)
    try:
        upgrade_to_head(engine)
        revision = _revision(engine)
    finally:
        engine.dispose()
    assert revision is not None
    return revision


def _revision(engine: Engine) -> str | None:
    """The store's Alembic revision (None without one, as after a downgrade to base)."""
    with engine.connect() as connection:
        if connection.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@pytest.fixture(params=_postgres_params())
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty store on each configured database."""
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copy2(request.getfixturevalue("migrated_sqlite_store"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_database_url")
    head = request.getfixturevalue("postgres_head_revision")
    engine = create_store_engine(url)
    if _revision(engine) != head:  # a test that downgraded failed before upgrading again
        upgrade_to_head(engine)
    try:
        yield url
    finally:
        _delete_all_rows(engine)
        engine.dispose()


def _delete_all_rows(engine: Engine) -> None:
    """Empty the tables that hold rows (the task queue's, then the store's), referencing
    tables first.

    DELETE, not TRUNCATE: a TRUNCATE makes new files and syncs them at commit (0.1 s for the
    four tables of an API test, 0.5 s for all), a DELETE of a few rows costs a millisecond.
    The triggers of a round may write rows (tombstones of deleted canonical rows): the next
    round deletes them."""
    from industrydata.store import metadata

    queue = (
        "procrastinate_events",
        "procrastinate_periodic_defers",
        "procrastinate_jobs",
        "procrastinate_workers",
    )
    tables = [f'"{name}"' for name in queue]
    tables += [f'"{table.name}"' for table in reversed(metadata.sorted_tables)]
    holding_rows = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in tables
    )
    with engine.begin() as connection:
        for _ in range(3):
            filled = set(connection.execute(text(holding_rows)).scalars())
            if not filled:
                return
            for name in tables:
                if name in filled:
                    connection.execute(text(f"DELETE FROM {name}"))
    raise AssertionError("the store's triggers kept writing rows while it was emptied")


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


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service and how to reach its development account."""

    origin: str  # http://127.0.0.1:PORT, for Settings.allowed_storage_endpoints
    blob_endpoint: str  # http://127.0.0.1:PORT/devstoreaccount1
    account: str
    account_key: str

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};"
            f"AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};"
        )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service on a free loopback port, stopped at the end of the session."""
    if shutil.which("node") is None:
        pytest.skip("Azurite needs node, which is not on PATH")
    if not AZURITE_BLOB.exists():
        pytest.skip(f"Azurite is not installed: {AZURITE_BLOB} is missing (run `make test`)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    location = tmp_path_factory.mktemp("azurite")
    log = (location / "azurite.log").open("wb")
    process = subprocess.Popen(
        [
            str(AZURITE_BLOB),
            *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
            *("--location", str(location)),
            *("--skipApiVersionCheck", "--disableTelemetry", "--silent"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(process, port, location / "azurite.log")
        origin = f"http://127.0.0.1:{port}"
        yield Azurite(origin, f"{origin}/{AZURITE_ACCOUNT}", AZURITE_ACCOUNT, AZURITE_KEY)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for_port(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + AZURITE_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Azurite exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"Azurite did not listen on port {port} within {AZURITE_START_SECONDS} s")


@pytest.fixture
def azure_container(azurite: Azurite) -> Iterator[str]:
    """A new, empty container in Azurite (a fresh name per test), deleted afterwards."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"test-{uuid.uuid4().hex[:20]}"
    service.create_container(name)
    try:
        yield name
    finally:
        service.delete_container(name)
