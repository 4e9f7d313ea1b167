"""The real ``industrydata`` executable: CLI commands as subprocesses, and the service as a
server process on a free loopback port, stopped at teardown; a failed test shows its logs.

The executable is the console script installed next to the interpreter running the tests
(``.venv/bin/industrydata``). Child processes get the test environment without any
``INDUSTRYDATA_*`` variable, so only what a test passes configures them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import live_group_members

CLI = Path(sys.executable).with_name("industrydata")
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
CLI_TIMEOUT_SECONDS = 300.0

_LAUNCHER = pytest.StashKey["ServiceLauncher"]()


def child_environment(**settings: str) -> dict[str, str]:
    """This process's environment without INDUSTRYDATA_* variables, plus ``settings``."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("INDUSTRYDATA_")
    }
    environment.update(settings)
    return environment


def run_cli(*args: str | Path, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``industrydata ARGS [--data-dir D]``; fail the test with its output unless it exits 0."""
    command = [str(CLI), *map(str, args)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    completed = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        env=child_environment(),
        timeout=CLI_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {completed.returncode}\n"
            f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
        )
    return completed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServiceProcess:
    """One ``industrydata serve`` process on 127.0.0.1; output goes to ``log_path``."""

    def __init__(self, data_dir: Path, log_path: Path, settings: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.settings = settings
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process and wait until it answers HTTP."""
        command = [
            str(CLI),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment(**self.settings),
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the service exited with {self.process.returncode} while starting")
            try:
                if (
                    httpx.get(f"{self.url}/.well-known/openid-configuration", timeout=1).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"the service did not answer within {START_TIMEOUT_SECONDS} s")

    def kill(self, *, whole_group: bool = False) -> None:
        """SIGKILL without any cleanup: the serving process alone (it crashed), or with every
        process it started, such as export children (the machine or container went down)."""
        assert self.process is not None and self.process.poll() is None
        if whole_group:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def wait_for_orphans(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Wait until no process the killed service started is alive (they notice by themselves)."""
        assert self.process is not None and self.process.poll() is not None
        deadline = time.monotonic() + timeout
        while live_group_members(self.process.pid):
            if time.monotonic() > deadline:
                pytest.fail(f"processes of the killed service still run after {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within the timeout."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def log(self) -> str:
        return (
            self.log_path.read_text(encoding="utf-8", errors="replace")
            if self.log_path.exists()
            else ""
        )


class ServiceLauncher:
    """Starts service processes for one test and stops them all at its end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.services: list[ServiceProcess] = []

    def __call__(self, data_dir: Path, **settings: str) -> ServiceProcess:
        """A started service on ``data_dir``; ``settings`` are extra environment variables."""
        service = ServiceProcess(
            data_dir, self.folder / f"serve-{len(self.services)}.log", settings
        )
        self.services.append(service)
        service.start()
        return service

    def stop_all(self) -> None:
        for service in self.services:
            service.stop()


@pytest.fixture
def launch_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceLauncher]:
    """``launch_service(data_dir, INDUSTRYDATA_X="...")`` → a running ServiceProcess."""
    launcher = ServiceLauncher(tmp_path)
    request.node.stash[_LAUNCHER] = launcher
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Attach the service logs to the report of a failed test."""
    report = yield
    launcher = item.stash.get(_LAUNCHER, None)
    if launcher is not None and report.failed:
        for service in launcher.services:
            report.sections.append(
                (f"industrydata serve log ({service.log_path.name})", service.log())
            )
    return report
