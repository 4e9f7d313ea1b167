"""The contention benchmark runs end to end on a tiny district against a real server and
prints what it promises: the import's time, a line per phase with percentiles and 5xx, the
ratio, and the target with PASS or MISS (the numbers of a tiny district mean nothing; the full
run is in docs/performance.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "contention.py"


@pytest.mark.slow
def test_contention_bench_tiny_district_prints_latencies_and_target() -> None:
    finished = subprocess.run(
        [sys.executable, str(BENCH), "--students", "30", "--baseline-seconds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert re.match(r"district: 30 students, [\d.]+ MiB of CSV", lines[0])
    assert re.fullmatch(r"import: [\d.]+ s, exit 0", lines[1])
    for phase in ("no import", "during import"):
        assert any(
            re.match(rf"{phase}\s+[\d,]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+0\s+200: [\d,]+$", line)
            for line in lines
        ), phase
    assert any(re.fullmatch(r"p99 during import / no import: [\d.]+x", line) for line in lines)
    assert re.match(r"target: p99 of API writes during the import < 2000 ms and 0 5xx: ", lines[-1])
