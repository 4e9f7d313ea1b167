"""The fleet benchmark runs end to end on three tiny tenants against the machine's PostgreSQL
and prints what it promises: the seed and store lines, a throughput line per drain, both
latencies with where their time goes, and each target with PASS or MISS (the numbers of tiny
tenants mean nothing; the full run is in docs/deploy.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL_ENV

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fleet.py"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get(POSTGRES_URL_ENV),
        reason=f"PostgreSQL not configured: set {POSTGRES_URL_ENV}",
    ),
]


def test_fleet_bench_tiny_tenants_prints_rates_latencies_and_targets(tmp_path: Path) -> None:
    arguments = [
        "--tenants", "3", "--students", "10", "--latency-runs", "1", "--warmup-runs", "0",
        "--extra-concurrency", "0", "--postgres-url", os.environ[POSTGRES_URL_ENV],
        "--work-dir", str(tmp_path),
    ]  # fmt: skip
    finished = subprocess.run(
        [sys.executable, str(BENCH), *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-4000:]
    lines = finished.stdout.splitlines()
    assert any(
        re.match(r"seed: 3 tenants x 10 students, [\d,]+ canonical rows each", line)
        for line in lines
    )
    assert any(re.match(r"store: [\d,.]+ MiB .*: [\d.]+ MiB per tenant", line) for line in lines)
    for label in ("1 worker  x concurrency 1", "2 workers x concurrency 1"):
        assert any(re.fullmatch(rf"{label}\s+3" + r"(\s+[\d.]+){8}", line) for line in lines), label
    for label in (r"production \(1 api, 1 worker\)", r"embedded \(serve, SQLite\)"):
        assert any(re.fullmatch(rf"{label}\s+1(\s+\d+){{3}}", line) for line in lines), label
        assert any(re.match(rf"{label}: POST -> run row \d+, ", line) for line in lines), label
    targets = [line for line in lines if line.startswith("target: ")]
    assert len(targets) == 2 and all(line.endswith((" PASS", " MISS")) for line in targets)
    (database,) = (line.split()[1].rstrip(",") for line in lines if line.startswith("database: "))
    assert not _exists(database), database
    assert list(tmp_path.iterdir()) == []


def _exists(database: str) -> bool:
    server = make_url(os.environ[POSTGRES_URL_ENV]).set(drivername="postgresql+psycopg")
    engine = create_engine(server)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
            )
            return found.first() is not None
    finally:
        engine.dispose()
