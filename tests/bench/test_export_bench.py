"""The export benchmark runs end to end on a tiny district and prints what it promises: one
line per measurement with its ratios to the floor and to pandas, and every target with PASS
or MISS (the numbers of a tiny district mean nothing; the full run is in docs/performance.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "export.py"


@pytest.mark.slow
def test_export_bench_tiny_district_prints_ratios_and_targets(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, str(BENCH), "--students", "40", "--store", str(tmp_path / "store.db")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert any(re.match(r"store: .* prepared for 40 students in \d+ s", line) for line in lines)
    delta_modes = ("delta", "delta dv", "delta dv no cdf")
    after_change = tuple(f"{mode} after 1% change" for mode in delta_modes)
    for name in ("floor", "pandas", "sdsCsv", "parquet", *delta_modes, *after_change):
        assert any(
            re.fullmatch(
                rf"{re.escape(name)}\s+[\d,]+\s+[\d.]+\s+[\d,]+\s+\d+ MiB\s+[\d.]+x\s+[\d.]+x", line
            )
            for line in lines
        ), name
    for name in after_change:
        share = rf"{re.escape(name)}: [\d.]+ s, [\d.]+% of a full run \([\d.]+ s\)"
        assert any(re.fullmatch(share, line) for line in lines), name
    targets = [line for line in lines if line.startswith("target ")]
    assert len(targets) == 12, targets
    assert all(line.endswith((" PASS", " MISS")) for line in targets), targets
