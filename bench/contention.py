"""API write latency while a large import runs, against the same writes with no import, in
the same run; prints percentiles, 5xx counts and the ratio, never asserts.

    .venv/bin/python bench/contention.py                     # 100,000 students
    .venv/bin/python bench/contention.py --students 250000   # the issue's district
    .venv/bin/python bench/contention.py --students 500 --baseline-seconds 3   # a quick look

A synthetic district is generated as SDS v2.1 CSV (``industrydata generate sds-csv``). A real
server (``industrydata serve``) runs on a free loopback port over a fresh data dir with two
Global Administrators in its directory; this process creates flows through the API, then
sends a steady stream of writes (PATCH of a flow's displayName, ``--interval`` apart, round
robin over the flows): first for ``--baseline-seconds`` with nothing else running (the
baseline), then while ``industrydata import sds-csv`` loads the district into the same store
from a process of its own, until the import exits. Every request is bounded by a client
timeout; the loops are bounded in count and time and stop by themselves.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DEFAULT_STUDENTS = 100_000
TARGET_P99_MS = 2000.0
FLOWS = "/beta/industryData/dataShareOutgoingFlows"
CLIENT_TIMEOUT_SECONDS = 120.0
MAX_WRITES_PER_PHASE = 100_000
SERVER_START_SECONDS = 60.0


@dataclass
class Phase:
    """The writes of one phase: latency in ms and status of each."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, latency_ms: float, status: str) -> None:
        self.latencies_ms.append(latency_ms)
        self.statuses[status] += 1

    def percentile(self, fraction: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[
            round(fraction * 100) - 1
        ]

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status.startswith("5"))

    def line(self) -> str:
        others = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        return (
            f"{self.name:<16} {len(self.latencies_ms):>7,} {self.percentile(0.5):>9.1f} "
            f"{self.percentile(0.99):>9.1f} {max(self.latencies_ms, default=0):>9.1f} "
            f"{self.server_errors:>5}   {others}"
        )


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from industrydata.cli import main; main()", *args]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


def _run(*args: str) -> str:
    return subprocess.run(_cli(*args), check=True, capture_output=True, text=True).stdout


def _start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        server = subprocess.Popen(
            _cli("serve", "--port", str(port), "--data-dir", str(data_dir)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited at start; see {log}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/beta/$metadata", timeout=1.0)
            return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"the server did not answer within {SERVER_START_SECONDS:.0f} s")


def _write(client: httpx.Client, flow_ids: list[str], index: int, phase: Phase) -> None:
    flow_id = flow_ids[index % len(flow_ids)]
    started = time.perf_counter()
    try:
        response = client.patch(f"{FLOWS}/{flow_id}", json={"displayName": f"Write {index}"})
        status = str(response.status_code)
    except httpx.TimeoutException:
        status = "timeout"
    phase.add((time.perf_counter() - started) * 1000, status)


def _stream(
    client: httpx.Client,
    flow_ids: list[str],
    phase: Phase,
    *,
    interval: float,
    until: float | None = None,
    running: subprocess.Popen[bytes] | None = None,
) -> None:
    """Writes ``interval`` apart until ``until`` (monotonic) or until ``running`` exits."""
    next_at = time.monotonic()
    for index in range(MAX_WRITES_PER_PHASE):
        if until is not None and time.monotonic() >= until:
            return
        if running is not None and running.poll() is not None:
            return
        _write(client, flow_ids, index, phase)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=DEFAULT_STUDENTS)
    parser.add_argument("--baseline-seconds", type=float, default=15.0)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between writes")
    parser.add_argument("--flows", type=int, default=5)
    parser.add_argument("--work-dir", type=Path, default=None)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=arguments.work_dir) as work:
        root = Path(work)
        data_dir, district = root / "data", root / "district"
        started = time.monotonic()
        _run("generate", "sds-csv", str(district), "--students", str(arguments.students))
        size = sum(path.stat().st_size for path in district.iterdir()) / 2**20
        print(
            f"district: {arguments.students:,} students, {size:,.1f} MiB of CSV "
            f"(generated in {time.monotonic() - started:.1f} s)"
        )

        tenant, admin, invitee = (str(uuid.uuid4()) for _ in range(3))
        for user, name in ((admin, "Bench Admin"), (invitee, "Bench Invitee")):
            _run(
                "directory", "add-user", "--tenant", tenant, "--id", user,
                "--display-name", name, "--global-admin", "--data-dir", str(data_dir),
            )  # fmt: skip
        token = _run("token", "--tenant", tenant, "--user", admin, "--data-dir", str(data_dir))
        port = _free_port()
        server = _start_server(data_dir, port, root / "server.log")
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {token.strip()}"},
                timeout=CLIENT_TIMEOUT_SECONDS,
            ) as client:
                flow_ids = []
                for number in range(arguments.flows):
                    response = client.post(
                        FLOWS,
                        json={
                            "displayName": f"Bench flow {number}",
                            "shareName": f"bench-{number}",
                            "inviteeUserIds": [invitee],
                        },
                    )
                    response.raise_for_status()
                    flow_ids.append(response.json()["id"])

                baseline = Phase("no import")
                _stream(
                    client,
                    flow_ids,
                    baseline,
                    interval=arguments.interval,
                    until=time.monotonic() + arguments.baseline_seconds,
                )

                during = Phase("during import")
                import_started = time.monotonic()
                with (root / "import.log").open("wb") as import_log:
                    importer = subprocess.Popen(
                        _cli(
                            "import", "sds-csv", str(district), "--tenant", tenant,
                            "--data-dir", str(data_dir),
                        ),  # fmt: skip
                        stdout=import_log,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, "COLUMNS": "120"},
                    )
                    _stream(client, flow_ids, during, interval=arguments.interval, running=importer)
                    importer.wait()
                import_seconds = time.monotonic() - import_started
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"import: {import_seconds:.1f} s, exit {importer.returncode}")
    columns = " ".join(f"{name:>9}" for name in ("p50 ms", "p99 ms", "max ms"))
    print(f"{'writes (PATCH)':<16} {'count':>7} {columns} {'5xx':>5}   statuses")
    print(baseline.line())
    print(during.line())
    ratio = during.percentile(0.99) / baseline.percentile(0.99)
    print(f"p99 during import / no import: {ratio:.2f}x")
    met = during.percentile(0.99) < TARGET_P99_MS and during.server_errors == 0
    print(
        f"target: p99 of API writes during the import < {TARGET_P99_MS:.0f} ms and 0 5xx: "
        f"{'PASS' if met else 'MISS'}"
    )


if __name__ == "__main__":
    main()
