"""The processes of deploy/Procfile for ``bench/fleet.py``, started as honcho would start them.

Each process runs its Procfile command through ``/bin/sh`` with its own ``$PORT``, the
settings given, this checkout's ``src`` first on ``PYTHONPATH`` (so the benchmark measures the
code beside it) and the venv of this interpreter first on ``PATH``. The ``api`` command is
also the embedded server: without ``INDUSTRYDATA_MODE=production`` it is one process doing
everything on SQLite. Every process is stopped by the benchmark (SIGTERM, then SIGKILL of its
process group after a bound), also when a measurement fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from honcho.environ import parse_procfile

REPOSITORY = Path(__file__).resolve().parents[1]
PROCFILE = REPOSITORY / "deploy" / "Procfile"
BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ProcfileProcess:
    """One started process of the Procfile (``api.1``, ``worker.2`` ...)."""

    name: str
    kind: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Processes:
    """Processes of deploy/Procfile sharing one set of settings, a data dir and a log dir."""

    def __init__(self, settings: dict[str, str], *, data_dir: Path, log_dir: Path) -> None:
        self.commands = parse_procfile(PROCFILE.read_text()).processes
        self.settings = settings
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.started: list[ProcfileProcess] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def _environment(self, port: int, extra: dict[str, str]) -> dict[str, str]:
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("INDUSTRYDATA_")
        }
        python_path = [str(REPOSITORY / "src"), environment.get("PYTHONPATH", "")]
        environment.update(
            PATH=f"{BIN}{os.pathsep}{environment.get('PATH', '')}",
            PYTHONPATH=os.pathsep.join(part for part in python_path if part),
            PORT=str(port),
            INDUSTRYDATA_DATA_DIR=str(self.data_dir),
            **self.settings,
            **extra,
        )
        return environment

    def start(self, kind: str, **settings: str) -> ProcfileProcess:
        """Start a process of the Procfile (not waiting for it: see ``wait_ready``)."""
        number = 1 + sum(1 for member in self.started if member.kind == kind)
        name = f"{kind}.{number}"
        port = free_port()
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            log.write(f"$ {self.commands[kind]} (PORT={port}) {settings}\n".encode())
            log.flush()
            process = subprocess.Popen(
                ["/bin/sh", "-c", self.commands[kind]],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(port, settings),
                cwd=self.data_dir,
                start_new_session=True,
            )
        member = ProcfileProcess(name, kind, port, log_path, process)
        self.started.append(member)
        return member

    def start_ready(self, kind: str, count: int = 1, **settings: str) -> list[ProcfileProcess]:
        """Start ``count`` processes of ``kind`` at once and wait until all are ready."""
        members = [self.start(kind, **settings) for _ in range(count)]
        for member in members:
            wait_ready(member)
        return members

    def stop(self, member: ProcfileProcess) -> None:
        """SIGTERM (a worker drains), then SIGKILL of its group after the bound."""
        if member.alive:
            member.process.send_signal(signal.SIGTERM)
            try:
                member.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(member.pid, signal.SIGKILL)
                member.process.wait()

    def stop_all(self) -> None:
        for member in self.started:
            self.stop(member)


def wait_ready(member: ProcfileProcess) -> None:
    """Until the process answers ``/readyz`` with 200 on its ``$PORT`` (a worker: it takes
    jobs and its export server is up); exits the benchmark with the process's log if it dies
    or takes longer than the bound."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not member.alive:
            raise SystemExit(f"{member.name} exited while starting:\n{member.log()[-4000:]}")
        if _ready(member):
            return
        time.sleep(0.1)
    raise SystemExit(f"{member.name} was not ready within {START_TIMEOUT_SECONDS:.0f} s")


def _ready(member: ProcfileProcess) -> bool:
    try:
        response = httpx.get(f"{member.url}/readyz", timeout=1, trust_env=False)
    except httpx.TransportError:
        return False
    return response.status_code == 200
