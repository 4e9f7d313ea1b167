"""The importer-limits benchmark runs end to end on two tiny drops and prints what it
promises: a line per drop with sizes, wall time, peak RSS of the writer and its reader, the
ratio to the honest baseline and PASS/MISS against the 512 MiB bound (the full run is in
docs/performance.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.canonical.hostile_drops import HOSTILE_DROPS

BENCH = Path(__file__).resolve().parents[2] / "bench" / "importer_limits.py"
DROPS = "NUL flood,encrypted member"


@pytest.mark.slow
def test_importer_limits_bench_tiny_drops_print_rss_and_the_bound() -> None:
    finished = subprocess.run(
        [sys.executable, str(BENCH), "--scale", "0.0005", "--students", "20", "--drops", DROPS],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0].startswith("baseline: an honest district of 20 students")
    number = r"[\d,]+(?:\.\d+)?"
    for name in ("honest district", *DROPS.split(",")):
        pattern = rf"{re.escape(name)}\s+(?:{number}\s+){{5}}{number}x  (PASS|MISS)  (.+)"
        found = [re.fullmatch(pattern, line) for line in lines]
        (match,) = [m for m in found if m]
        assert re.fullmatch(r"loaded, [\d,]+ rejected|refused: .+", match.group(2)), name
        if name == "honest district" or HOSTILE_DROPS[name][2] == 0:  # no size to scale
            expected = "loaded" if name == "honest district" else "refused: "
            assert match.group(2).startswith(expected), (name, match.group(2))
    assert lines[-1] in (
        "target peak RSS under 512 MiB for every drop: PASS",
        "target peak RSS under 512 MiB for every drop: MISS",
    )


@pytest.mark.slow
def test_importer_limits_bench_loads_a_valid_district_with_this_code_and_another() -> None:
    source = Path(__file__).resolve().parents[2] / "src"
    finished = subprocess.run(
        [sys.executable, str(BENCH), "--drops", "", "--districts", "50", "--against", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0] == "large valid districts: RSS in MiB, bound 512 MiB per process"
    number = r"[\d,]+(?:\.\d+)?"
    rows = [
        re.fullmatch(
            rf"50 students\s+(this code|\S+)\s+(?:{number}\s+){{4}}({number})x  PASS  "
            r"loaded, 0 rejected",
            line,
        )
        for line in lines
    ]
    found = [row for row in rows if row]
    assert [row.group(1) for row in found] == ["this code", str(source)]
    assert found[1].group(2) == "1.00"  # the other code is the reference of the ratio
    assert lines[-1] == "target peak RSS under 512 MiB for every district (this code): PASS"
