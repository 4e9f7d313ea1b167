"""The ingest benchmark runs end to end on a tiny district and prints what it promises: a line
per step with rows, wall time and rows/s, the three ratios, and every target with PASS or MISS
(the numbers of a tiny district mean nothing; the full run is in docs/performance.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"


@pytest.mark.slow
def test_ingest_bench_tiny_district_prints_ratios_and_targets() -> None:
    finished = subprocess.run(
        [sys.executable, str(BENCH), "--students", "30"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert re.match(r"district: 30 students, [\d,]+ records in 10 files", lines[0])
    for step in (
        "first load",
        "reload (unchanged)",
        "baseline (key order)",
        "baseline (load order)",
    ):
        assert any(
            re.fullmatch(rf"{re.escape(step)}\s+[\d,]+\s+[\d.]+\s+[\d,]+(\s+[\d,]+ MiB)?", line)
            for line in lines
        ), step
    assert any(re.match(r"load / baseline: \d+\.\d\dx \(target <= 2x", line) for line in lines)
    assert any(re.match(r"reload / load: \d+\.\d\dx \(target < 1x\)", line) for line in lines)
    assert any(re.match(r"peak RSS of the loads: \d+\.\d\d GiB", line) for line in lines)
    targets = [line for line in lines if line.startswith("target ")]
    assert len(targets) == 3 and all(line.endswith((": PASS", ": MISS")) for line in targets)
