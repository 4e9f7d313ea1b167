"""Production mode for real: the processes of deploy/Procfile on the machine's PostgreSQL.

``fleet`` starts API and worker processes from the deployment example exactly as honcho
would (its Procfile parser and port scheme), with a fast clock: heartbeats every second,
a worker dead after 4 s of silence, the periodic work every second. Each test gets a fresh
database and data dir; every process is stopped at teardown and a failed test shows the logs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from honcho.environ import parse_procfile
from sqlalchemy import create_engine

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.config import Settings
from industrydata.directory import add_user
from industrydata.identity import DevelopmentKeys, mint_token
from industrydata.store import CredentialSealer, Store, open_store, upgrade_to_head

REPOSITORY = Path(__file__).resolve().parents[2]
PROCFILE = REPOSITORY / "deploy" / "Procfile"
BIN = Path(sys.executable).parent
FLOWS = "/beta/industryData/dataShareOutgoingFlows"
START_TIMEOUT_SECONDS = 45.0

FAST_CLOCK = {
    "INDUSTRYDATA_WORKER_HEARTBEAT_SECONDS": "1",
    "INDUSTRYDATA_WORKER_STALLED_SECONDS": "4",
    "INDUSTRYDATA_WORKER_RECOVERY_SECONDS": "1",
    "INDUSTRYDATA_SCHEDULER_INTERVAL_SECONDS": "1",
    "INDUSTRYDATA_WORKER_DRAIN_SECONDS": "20",
}
"""Settings of every fleet process in the tests (production defaults: 10, 30, 10, 30, 30)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class FleetProcess:
    """One process of the Procfile (``api.1``, ``worker.2`` ...)."""

    name: str
    kind: str
    port: int
    log_path: Path
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Fleet:
    """API and worker processes of deploy/Procfile on one database and data dir."""

    database_url: str
    data_dir: Path
    log_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    processes: list[FleetProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.commands = parse_procfile(PROCFILE.read_text()).processes

    def environment(self, port: int) -> dict[str, str]:
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("INDUSTRYDATA_")
        }
        environment.update(
            PATH=f"{BIN}{os.pathsep}{environment.get('PATH', '')}",
            PORT=str(port),
            INDUSTRYDATA_MODE="production",
            INDUSTRYDATA_DATABASE_URL=self.database_url,
            INDUSTRYDATA_DATA_DIR=str(self.data_dir),
            **FAST_CLOCK,
        )
        environment.update(self.settings)
        return environment

    def start(self, kind: str, *, wait: bool = True, **settings: str) -> FleetProcess:
        """Start a process of the Procfile; ``settings`` add to its environment."""
        number = 1 + sum(1 for existing in self.processes if existing.kind == kind)
        name = f"{kind}.{number}"
        member = FleetProcess(name, kind, free_port(), self.log_dir / f"{name}.log", settings)
        self.processes.append(member)
        self._launch(member)
        if wait:
            self.wait_ready(member)
        return member

    def start_together(self, *kinds: str) -> list[FleetProcess]:
        """Start a process of each of ``kinds`` at once (their start-ups overlap), then wait
        until every one is ready."""
        members = [self.start(kind, wait=False) for kind in kinds]
        for member in members:
            self.wait_ready(member)
        return members

    def _launch(self, member: FleetProcess) -> None:
        with member.log_path.open("ab") as log:
            log.write(f"$ {self.commands[member.kind]} (PORT={member.port})\n".encode())
            log.flush()
            member.process = subprocess.Popen(
                ["/bin/sh", "-c", self.commands[member.kind]],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**self.environment(member.port), **member.settings},
                cwd=self.data_dir,
                start_new_session=True,
            )

    def wait_ready(self, member: FleetProcess) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not member.alive:
                pytest.fail(f"{member.name} exited while starting:\n{member.log()}")
            if self._ready(member):
                return
            time.sleep(0.1)
        pytest.fail(f"{member.name} was not ready within {START_TIMEOUT_SECONDS} s")

    def _ready(self, member: FleetProcess) -> bool:
        """Both kinds answer /readyz on their $PORT (a worker once it takes jobs); /healthz
        names the process, so another one that took the port is never taken for it."""
        assert member.process is not None
        try:
            health = httpx.get(f"{member.url}/healthz", timeout=2, trust_env=False)
            ready = httpx.get(f"{member.url}/readyz", timeout=2, trust_env=False)
        except httpx.TransportError:
            return False
        if health.status_code == 200 and health.json().get("pid") != member.process.pid:
            pytest.fail(f"{member.name}'s port {member.port} is another process's")
        return ready.status_code == 200

    def kill(self, member: FleetProcess) -> None:
        """SIGKILL: the process is gone at once, with no cleanup (its export children die
        with it, as they do when a machine goes down)."""
        assert member.process is not None
        os.killpg(member.process.pid, signal.SIGKILL)
        member.process.wait(timeout=10)

    def stop(self, member: FleetProcess, *, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit; the exit status."""
        assert member.process is not None
        if member.process.poll() is None:
            member.process.send_signal(signal.SIGTERM)
            try:
                member.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(member.process.pid, signal.SIGKILL)
                member.process.wait()
                pytest.fail(f"{member.name} did not stop within {timeout} s of SIGTERM")
        return member.process.returncode

    def restart(self, member: FleetProcess) -> None:
        self.stop(member)
        self._launch(member)
        self.wait_ready(member)

    def api(self) -> httpx.Client:
        """A client of the first live API process."""
        member = next(p for p in self.processes if p.kind == "api" and p.alive)
        return httpx.Client(base_url=member.url, timeout=30, trust_env=False)

    def clients(self) -> list[httpx.Client]:
        return [
            httpx.Client(base_url=p.url, timeout=30, trust_env=False)
            for p in self.processes
            if p.kind == "api" and p.alive
        ]

    def stop_all(self) -> None:
        for member in self.processes:
            if member.alive:
                assert member.process is not None
                os.killpg(member.process.pid, signal.SIGKILL)
                member.process.wait()


@pytest.fixture
def fleet_database(fresh_postgres_database: str) -> str:
    """A fresh, migrated PostgreSQL database for one fleet test."""
    engine = create_engine(fresh_postgres_database)
    upgrade_to_head(engine)
    engine.dispose()
    return fresh_postgres_database


_FLEET = pytest.StashKey["Fleet"]()


@pytest.fixture
def fleet(fleet_database: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    logs = tmp_path / "logs"
    logs.mkdir()
    started = Fleet(fleet_database, data_dir, logs)
    request.node.stash[_FLEET] = started
    try:
        yield started
    finally:
        started.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Attach every fleet process's log to the report of a failed test."""
    report = yield
    started = item.stash.get(_FLEET, None)
    if started is not None and report.failed:
        for member in started.processes:
            report.sections.append((f"{member.name} log", member.log()[-20000:]))
    return report


@dataclass(frozen=True)
class SeededTenant:
    tenant_id: str
    owner: str
    invitee: str
    students: int


def seed_tenants(fleet: Fleet, count: int, *, students: int, drops: Path) -> list[SeededTenant]:
    """``count`` tenants, each with two Global Administrators and a generated district of
    its own, loaded in this process (before or beside the fleet)."""
    store = open_store(fleet.database_url)
    try:
        tenants = []
        for index in range(count):
            tenant = SeededTenant(*(str(uuid.uuid4()) for _ in range(3)), students)
            with store.writing() as session:
                for object_id, name in ((tenant.owner, "Adele"), (tenant.invitee, "Megan")):
                    add_user(
                        session,
                        tenant_id=tenant.tenant_id,
                        object_id=object_id,
                        display_name=name,
                        is_global_admin=True,
                    )
                session.commit()
            drop = drops / f"district-{index}"
            generate_sds_csv(drop, students=students, seed=index)
            load_sds_csv(store.write_engine, drop, tenant_id=tenant.tenant_id)
            tenants.append(tenant)
        return tenants
    finally:
        store.dispose()


class Caller:
    """Tokens of the data dir's development identity provider."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = DevelopmentKeys(settings.data_dir)
        CredentialSealer(settings.data_dir / "keys" / "credential.key")

    def headers(self, tenant_id: str, object_id: str) -> dict[str, str]:
        jwt = mint_token(
            self.keys,
            issuer=self.settings.token_issuer,
            audience=self.settings.token_audience,
            tenant_id=tenant_id,
            object_id=object_id,
            lifetime_seconds=3600,
        )
        return {"Authorization": f"Bearer {jwt}"}


@pytest.fixture
def caller(fleet: Fleet) -> Caller:
    """Keys made before any process starts (they would make them too)."""
    return Caller(Settings(data_dir=fleet.data_dir))


def create_and_accept(
    client: httpx.Client,
    caller: Caller,
    tenant: SeededTenant,
    destination: Path,
    *,
    schedule: dict[str, Any] | None = None,
) -> str:
    """A flow of ``tenant`` whose invitation is accepted to ``destination``; its id."""
    owner = caller.headers(tenant.tenant_id, tenant.owner)
    body = {
        "@odata.type": "#microsoft.graph.industryData.dataShareOutgoingFlow",
        "displayName": "Roster to the lake",
        "shareName": "lake",
        "inviteeUserIds": [tenant.invitee],
    }
    created = client.post(FLOWS, json=body, headers=owner)
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    accept = {
        "destination": {"url": destination.as_uri(), "format": "sdsCsv"},
        "schedule": schedule or {"frequency": "none"},
    }
    invitee = caller.headers(tenant.tenant_id, tenant.invitee)
    accepted = client.post(f"{FLOWS}/{flow_id}/invitation/accept", json=accept, headers=invitee)
    assert accepted.status_code == 200, accepted.text
    return flow_id


def store_of(fleet: Fleet) -> Store:
    return open_store(fleet.database_url)
