"""Export speed against two baselines measured in the same run; prints ratios, never asserts.

    .venv/bin/python bench/export.py                       # ~10 million canonical rows
    .venv/bin/python bench/export.py --students 2000       # a quick look
    .venv/bin/python bench/export.py --store /tmp/district.db   # prepare once, reuse after
    .venv/bin/python bench/export.py --store /tmp/district.db --repeat 3   # docs/performance.md

A generated district (``canonical.generator``, loaded with ``load_sds_csv`` into SQLite) is
exported to a local folder by: (a) the floor, ADBC → Arrow → pyarrow.parquet per table with
nothing around it; (b) pandas ``read_sql`` + ``to_csv`` per table, what a user would write
instead; (c) the service's ``export_snapshot`` in each format, ``delta`` both without deletion
vectors (the server's default: changed files are rewritten) and with them (``delta dv``, a
flow's choice; ``delta dv no cdf`` also without the Change Data Feed); then, per repeat, 1% of every table's rows are changed through the store and
both ``delta`` tables are brought up to date again; each such run is reported in seconds and
as a share of a full ``delta`` run measured above (the faster of the two modes': a first run
writes the same in both). Each measurement runs in a child
process of its own (``bench/_measure.py``), so its peak RSS is its own; the store file is read
once beforehand so every measurement finds it in the page cache.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.statistics import count_rows
from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.store import create_store_engine, upgrade_to_head

TENANT = "be0c4a11-0000-4000-8000-00000000b0b0"
DEFAULT_STUDENTS = 340_000  # about 29 canonical rows per student: ~10 million rows
MEASURE = Path(__file__).with_name("_measure.py")
MiB = 1024 * 1024
GiB = 1024 * MiB
FORMATS = ("sdsCsv", "parquet", "delta")
DELTA_MODES = {"delta": "delta", "delta dv": "delta-dv", "delta dv no cdf": "delta-dv-nocdf"}
"""Each ``delta`` mode's measurement name and ``_measure.py`` kind: without deletion vectors
(copy-on-write, the server's default) and with them."""
AFTER_CHANGE = " after 1% change"


@dataclass(frozen=True)
class Measurement:
    """One export: rows written, wall seconds, the child's peak RSS in bytes."""

    name: str
    rows: int
    seconds: float
    peak_rss: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def prepare(store: Path, students: int) -> None:
    """Generate and load the district into ``store`` unless it already holds it."""
    url = f"sqlite:///{store}"
    engine = create_store_engine(url, pooled=False)
    try:
        upgrade_to_head(engine)
        _check_one_tenant(engine)
        rows = sum(count_rows(engine, TENANT).values())
        if rows:
            print(f"store: {store} reused ({rows:,} canonical rows)")
            return
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="industrydata-bench-sds-") as folder:
            generate_sds_csv(Path(folder), students=students, seed=1)
            generated = time.perf_counter()
            report = load_sds_csv(engine, Path(folder), tenant_id=TENANT)
        loaded = time.perf_counter()
        print(
            f"store: {store} prepared for {students:,} students in {loaded - started:.0f} s "
            f"(generate {generated - started:.0f} s, load {loaded - generated:.0f} s, "
            f"{sum(report.rows.values()):,} rows written, {report.errors} errors)"
        )
    finally:
        engine.dispose()


def _check_one_tenant(engine: Engine) -> None:
    """The baselines read whole tables: a store holding other tenants would inflate them."""
    with engine.connect() as connection:
        for table in CANONICAL_TABLES:
            tenant = sql_table(table).c[TENANT_COLUMN]
            found = connection.execute(select(func.min(tenant), func.max(tenant))).one()
            if set(found) - {None, TENANT}:
                sys.exit(f"{engine.url.database} holds other tenants than the benchmark's")


def change_one_percent(store: Path) -> int:
    """Move FirstSeenDateTime on every hundredth row of every table; the rows changed."""
    engine = create_store_engine(f"sqlite:///{store}", pooled=False)
    moment = datetime.now(timezone.utc).replace(tzinfo=None)
    changed = 0
    try:
        with engine.begin() as connection:
            for table in CANONICAL_TABLES:
                sql = sql_table(table)
                statement = (
                    sql.update()
                    .where(sql.c[TENANT_COLUMN] == TENANT, text("rowid % 100 = 0"))
                    .values(FirstSeenDateTime=moment)
                )
                changed += connection.execute(statement).rowcount
    finally:
        engine.dispose()
    return changed


def warm_page_cache(store: Path) -> None:
    with store.open("rb") as handle:
        while handle.read(16 * MiB):
            pass


def measure(name: str, kind: str, store: Path, out: Path) -> Measurement:
    """Run one workload in a child process; ``out`` is its output folder."""
    finished = subprocess.run(
        [sys.executable, str(MEASURE), kind, str(store), TENANT, str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    measurement = Measurement(name, result["rows"], result["seconds"], result["peak_rss"])
    print(
        f"  {name}: {measurement.rows:,} rows in {measurement.seconds:.1f} s, "
        f"peak RSS {measurement.peak_rss / MiB:.0f} MiB",
        flush=True,
    )
    return measurement


def report(results: dict[str, Measurement], formats: tuple[str, ...]) -> None:
    floor, pandas = results["floor"], results["pandas"]
    print()
    header = f"{'export':<26}{'rows':>12}{'wall s':>9}{'rows/s':>12}{'peak RSS':>11}"
    print(header + f"{'x floor':>9}{'vs pandas':>11}")
    for measurement in results.values():
        print(
            f"{measurement.name:<26}{measurement.rows:>12,}{measurement.seconds:>9.1f}"
            f"{measurement.rows_per_second:>12,.0f}{measurement.peak_rss / MiB:>8.0f} MiB"
            f"{measurement.seconds / floor.seconds:>8.2f}x"
            f"{pandas.seconds / measurement.seconds:>10.1f}x"
        )
    print()
    for format, limit in (("parquet", 1.3), ("sdsCsv", 2.0)):
        if format in results:
            ratio = results[format].seconds / floor.seconds
            print(
                _target(f"{format} within {limit}x of the floor", f"{ratio:.2f}x", ratio <= limit)
            )
        else:
            print(
                f"target {format} within {limit}x of the floor: not measured ({format} not implemented)"
            )
    exports = [*formats, "delta dv"]
    for name in exports:
        speedup = pandas.seconds / results[name].seconds
        print(_target(f"{name} at least 5x faster than pandas", f"{speedup:.1f}x", speedup >= 5))
    for name in exports:
        peak = results[name].peak_rss
        print(_target(f"{name} peak RSS under 1 GiB", f"{peak / MiB:.0f} MiB", peak < GiB))
    full = min((results[mode] for mode in DELTA_MODES), key=lambda run: run.seconds)
    shares = {mode: _after_change(results[mode + AFTER_CHANGE], full) for mode in DELTA_MODES}
    for mode in ("delta dv", "delta dv no cdf"):
        share = shares[mode]
        print(_target(f"{mode} after a 1% change under 10% of a full run", f"{share:.1%}", share < 0.1))


def _after_change(again: Measurement, full: Measurement) -> float:
    """Print a run after a 1% change in seconds and as a share of the full run; return the
    share."""
    share = again.seconds / full.seconds
    print(f"{again.name}: {again.seconds:.2f} s, {share:.1%} of a full run ({full.seconds:.1f} s)")
    return share


def _target(what: str, value: str, met: bool) -> str:
    return f"target {what}: {value} {'PASS' if met else 'MISS'}"


def best(measurements: list[Measurement]) -> Measurement:
    """The fastest of repeated measurements (other work on the machine only ever slows one
    down), with the highest peak RSS seen."""
    fastest = min(measurements, key=lambda measurement: measurement.seconds)
    peak = max(measurement.peak_rss for measurement in measurements)
    return Measurement(fastest.name, fastest.rows, fastest.seconds, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=DEFAULT_STUDENTS, help="district size")
    parser.add_argument("--store", type=Path, help="SQLite store file, prepared once, reused")
    parser.add_argument("--out", type=Path, help="folder for the exports (default: temporary)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per measurement; the fastest counts"
    )
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="industrydata-bench-") as scratch:
        store = options.store or Path(scratch) / "store.db"
        out = options.out or Path(scratch) / "out"
        prepare(store.resolve(), options.students)
        warm_page_cache(store)
        print(f"measuring (each run in its own process), exports under {out}:", flush=True)
        results: dict[str, Measurement] = {}
        kinds = {"floor": "floor", "pandas": "pandas", **dict(zip(FORMATS, FORMATS))}
        for name, kind in {**kinds, **DELTA_MODES}.items():
            runs = []
            for _ in range(options.repeat):
                shutil.rmtree(out / kind, ignore_errors=True)
                runs.append(measure(name, kind, store, out / kind))
            results[name] = best(runs)
        again: dict[str, list[Measurement]] = {mode: [] for mode in DELTA_MODES}
        for _ in range(options.repeat):
            changed = change_one_percent(store)
            print(f"  changed {changed:,} rows (FirstSeenDateTime of every hundredth row)")
            for mode, kind in DELTA_MODES.items():
                again[mode].append(measure(mode + AFTER_CHANGE, kind, store, out / kind))
        for mode, runs in again.items():
            results[mode + AFTER_CHANGE] = best(runs)
        shutil.rmtree(out, ignore_errors=True)
        report(results, FORMATS)


if __name__ == "__main__":
    main()
