"""Load speed and memory against a plain bulk insert measured in the same run; prints ratios,
never asserts.

    .venv/bin/python bench/ingest.py                    # 100,000 students, ~3 million rows
    .venv/bin/python bench/ingest.py --students 2000    # a quick look

A synthetic district (``canonical.generator``) is written as SDS v2.1 CSV and loaded with
``load_sds_csv`` into a fresh SQLite store, then loaded again unchanged (the reload). The
baseline inserts the very rows the load wrote, prepared beforehand as tuples, into the same
tables of another fresh store: one ``executemany`` per table in one transaction, on the same
page cache as the load, once in key order and once in the load's order; the faster counts.
Each step runs in a child process of its own, so its peak RSS is its own; the loads' peak
adds the reader process's (uploads this large are read in a child process). Every step runs
``--repeat`` times (fresh stores each time) and the fastest run counts, for the loads as for
the baseline: on a shared machine single runs vary by a third.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.canonical.ingest._load import SQLITE_CACHE_KIB
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.store import create_store_engine, upgrade_to_head

TENANT = "be0c4a11-0000-4000-8000-00000000a1a1"
DEFAULT_STUDENTS = 100_000
MiB = 1024 * 1024
GiB = 1024 * MiB
MAX_LOAD_RATIO = 2.0


@dataclass(frozen=True)
class Measurement:
    name: str
    rows: int
    seconds: float
    peak_rss: int | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def _peak_rss() -> int:
    """Peak resident set size in bytes of this process plus its largest finished child (the
    load's reader process, when it has one): an upper bound of what the load held at once."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) * 1024  # Linux reports KiB


def _new_store(path: Path) -> str:
    """A migrated, empty store at ``path`` (replacing what is there)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = create_store_engine(url, pooled=False)
    upgrade_to_head(engine)
    engine.dispose()
    return url


def measure_loads(drop: Path, store: Path) -> tuple[Measurement, Measurement]:
    """First load and reload of ``drop`` into a fresh store (in a child process)."""
    engine = create_store_engine(_new_store(store))
    try:
        measured = []
        for name in ("first load", "reload (unchanged)"):
            started = time.perf_counter()
            report = load_sds_csv(engine, drop, tenant_id=TENANT)
            seconds = time.perf_counter() - started
            if report.problems:
                raise SystemExit(f"{name}: the generated district has {report.errors} errors")
            measured.append(Measurement(name, sum(report.rows.values()), seconds, _peak_rss()))
        return measured[0], measured[1]
    finally:
        engine.dispose()


def measure_baseline(loaded: Path, store: Path, order: str) -> Measurement:
    """The rows of ``loaded`` inserted into a fresh store by plain ``executemany``."""
    with sqlite3.connect(loaded) as source:
        tables = []
        for table in CANONICAL_TABLES:
            name = sql_table(table).name
            key = ", ".join(f'"{column}"' for column in (TENANT_COLUMN, *table.key))
            sort = f" ORDER BY {key}" if order == "key order" else " ORDER BY rowid"
            rows = source.execute(f'SELECT * FROM "{name}"{sort}').fetchall()
            tables.append((name, rows))
    _new_store(store)
    target = sqlite3.connect(store, isolation_level=None)
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=NORMAL")
    target.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    # A plain insert: without the change-tracking triggers, whose mere presence makes SQLite
    # journal every page a statement changes (the rows carry their row numbers and versions).
    triggers = target.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for (trigger,) in triggers:
        target.execute(f'DROP TRIGGER "{trigger}"')
    started = time.perf_counter()
    target.execute("BEGIN")
    for name, rows in tables:
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            target.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)
    target.execute("COMMIT")
    seconds = time.perf_counter() - started
    target.close()
    return Measurement(f"baseline ({order})", sum(len(rows) for _, rows in tables), seconds)


def _in_child(function, *args):  # type: ignore[no-untyped-def]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def _fastest(measurements: list[Measurement]) -> Measurement:
    """The fastest run, with the highest peak RSS of all runs (memory is not luck)."""
    fastest = min(measurements, key=lambda measurement: measurement.seconds)
    peaks = [measurement.peak_rss for measurement in measurements if measurement.peak_rss]
    return replace(fastest, peak_rss=max(peaks) if peaks else None)


def _row(measurement: Measurement) -> str:
    rss = f"{measurement.peak_rss / MiB:,.0f} MiB" if measurement.peak_rss else ""
    line = (
        f"{measurement.name:<24}{measurement.rows:>12,}{measurement.seconds:>10.1f}"
        f"{measurement.rows_per_second:>12,.0f}{rss:>12}"
    )
    return line.rstrip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=DEFAULT_STUDENTS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2, help="runs per step; the fastest counts")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="industrydata-bench-ingest-") as folder:
        work = Path(folder)
        drop = work / "district"
        started = time.perf_counter()
        files = generate_sds_csv(drop, students=options.students, seed=options.seed)
        size = sum(path.stat().st_size for path in drop.iterdir())
        print(
            f"district: {options.students:,} students, {sum(files.values()):,} records in "
            f"{len(files)} files ({size / MiB:,.1f} MiB), generated in "
            f"{time.perf_counter() - started:.1f} s"
        )
        print(
            f"store: SQLite (WAL), page cache {SQLITE_CACHE_KIB // 1024} MiB for every step; "
            f"best of {options.repeat} runs each"
        )
        loads = [
            _in_child(measure_loads, drop, work / f"load-{run}.db") for run in range(options.repeat)
        ]
        first = _fastest([first for first, _ in loads])
        reload = _fastest([reload for _, reload in loads])
        baselines = [
            _fastest(
                [
                    _in_child(measure_baseline, work / "load-0.db", work / "baseline.db", order)
                    for _ in range(options.repeat)
                ]
            )
            for order in ("key order", "load order")
        ]
    baseline = min(baselines, key=lambda measurement: measurement.seconds)
    print()
    print(f"{'step':<24}{'rows':>12}{'wall s':>10}{'rows/s':>12}{'peak RSS':>12}")
    for measurement in (first, reload, *baselines):
        print(_row(measurement))
    print()
    load_ratio = first.seconds / baseline.seconds
    reload_ratio = reload.seconds / first.seconds
    peak = max(first.peak_rss or 0, reload.peak_rss or 0)
    print(f"load / baseline: {load_ratio:.2f}x (target <= {MAX_LOAD_RATIO:.0f}x, {baseline.name})")
    print(f"reload / load: {reload_ratio:.2f}x (target < 1x)")
    print(f"peak RSS of the loads: {peak / GiB:.2f} GiB (target < 1 GiB, with the reader)")
    for target, met in (
        (f"load within {MAX_LOAD_RATIO:.0f}x the baseline", load_ratio <= MAX_LOAD_RATIO),
        ("reload faster than the first load", reload_ratio < 1),
        ("peak memory under 1 GiB", peak < GiB),
    ):
        print(f"target {target}: {'PASS' if met else 'MISS'}")


if __name__ == "__main__":
    main(sys.argv[1:])
