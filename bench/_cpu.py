"""CPU seconds of processes, read from Linux's /proc, for ``bench/fleet.py``.

``process_tree_cpu_seconds`` counts a process and all its descendants, including those that
ended and were reaped (a process's ``cutime``/``cstime`` hold the children it waited for):
a worker, its multiprocessing forkserver and every export child the forkserver forked and
reaped. ``PostgresBackendCpu`` samples the backends serving one database (the server must
run on this machine); a backend that ends between two samples loses at most one interval.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.1


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1]), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _own_and_children_seconds(fields: list[str]) -> float:
    """utime + stime + cutime + cstime (fields 14 to 17 of proc(5))."""
    return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS


def _own_seconds(fields: list[str]) -> float:
    return sum(int(value) for value in fields[11:13]) / CLOCK_TICKS


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every descendant, living or reaped."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        if (fields := _stat(current)) is not None:
            total += _own_and_children_seconds(fields)
            pending.extend(children.get(current, ()))
    return total


@dataclass(frozen=True)
class BackendUsage:
    """What the backends of one database used while sampled."""

    cpu_seconds: float
    peak_connections: int


class PostgresBackendCpu:
    """Samples the CPU time of the backends connected to ``database`` until ``stop``."""

    def __init__(self, server_url: str, database: str) -> None:
        self._engine = create_engine(server_url, pool_size=1)
        self._database = database
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._peak = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def start(self) -> PostgresBackendCpu:
        self._sample(started_before=True)
        self._thread.start()
        return self

    def stop(self) -> BackendUsage:
        self._stopping.set()
        self._thread.join()
        self._sample(started_before=False)
        self._engine.dispose()
        spent = sum(self._last[pid] - self._first[pid] for pid in self._last)
        return BackendUsage(spent, self._peak)

    def _sample_until_stopped(self) -> None:
        while not self._stopping.wait(SAMPLE_SECONDS):
            self._sample(started_before=False)

    def _sample(self, *, started_before: bool) -> None:
        """Read every backend's CPU time; one first seen after the first sample started
        since the previous one, so all its time is this measurement's."""
        with self._engine.connect() as connection:
            pids = (
                connection.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = :database AND pid <> pg_backend_pid()"
                    ),
                    {"database": self._database},
                )
                .scalars()
                .all()
            )
        self._peak = max(self._peak, len(pids))
        for pid in pids:
            if (fields := _stat(pid)) is not None:
                seconds = _own_seconds(fields)
                self._first.setdefault(pid, seconds if started_before else 0.0)
                self._last[pid] = seconds
