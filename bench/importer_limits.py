"""Peak memory and time of the importer on hostile drops, against an honest district loaded
in the same run; prints the measurements and the 512 MiB bound, never asserts.

    .venv/bin/python bench/importer_limits.py                  # full sizes (the issue's)
    .venv/bin/python bench/importer_limits.py --scale 0.01     # a quick look

Every drop of the corpus (``tests/canonical/hostile_drops.py``) is made at its full size
times ``--scale`` and loaded into a fresh SQLite store holding a small roster, each load in
a process of its own, made in another: the writer's peak RSS is its ``VmHWM`` (Linux; its
``ru_maxrss`` would start at the RSS of the process that forked it), the reader process of a
large upload is measured by ``RUSAGE_CHILDREN`` (an upper bound: it starts at the writer's
RSS when it was started). The baseline is an honest district (``canonical.generator``) of
``--students`` students, loaded the same way. The bound is per process: the writing process
and its reader each stay under 512 MiB; their sum is printed too.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from industrydata.canonical.generator import generate_sds_csv  # noqa: E402
from industrydata.canonical.ingest import load_sds_csv, load_sds_lake  # noqa: E402
from industrydata.errors import LoadError  # noqa: E402
from industrydata.store import create_store_engine, upgrade_to_head  # noqa: E402
from tests.canonical.hostile_drops import BASE_SDS, HOSTILE_DROPS  # noqa: E402

TENANT = "be0c4a11-0000-4000-8000-00000000b0b0"
MiB = 1024 * 1024
BOUND = 512 * MiB
DEFAULT_STUDENTS = 20_000


@dataclass(frozen=True)
class Measurement:
    name: str
    input_bytes: int
    unpacked_bytes: int
    outcome: str
    seconds: float
    writer_rss: int
    reader_rss: int

    @property
    def largest(self) -> int:
        return max(self.writer_rss, self.reader_rss)


def _peaks() -> tuple[int, int]:
    """Peak RSS in bytes of this process and of its largest finished child (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    status = Path("/proc/self/status")
    if status.exists():
        (line,) = (line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        own = int(line.split()[1])
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own * 1024, children * 1024


def measure(name: str, kind: str, drop: Path, roster: Path, store: Path) -> Measurement:
    """Load ``drop`` into a fresh store holding ``roster``'s rows (in a process of its own)."""
    engine = create_store_engine(f"sqlite:///{store}", pooled=False)
    try:
        upgrade_to_head(engine)
        load_sds_csv(engine, roster, tenant_id=TENANT, parallel=False)
        load = load_sds_csv if kind == "sds-csv" else load_sds_lake
        started = time.perf_counter()
        try:
            report = load(engine, drop, tenant_id=TENANT, report_path=store.with_suffix(".csv"))
            outcome = f"loaded, {report.rejected_records:,} rejected"
        except LoadError as error:
            outcome = f"refused: {error}"
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    writer, reader = _peaks()
    return Measurement(name, _size(drop), _unpacked(drop), outcome, seconds, writer, reader)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def _unpacked(path: Path) -> int:
    """Bytes of the files of an upload, a zip archive's once inflated."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist())
    return _size(path)


def _in_child(function, *args):  # type: ignore[no-untyped-def]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def _row(measurement: Measurement, baseline: Measurement) -> str:
    verdict = "PASS" if measurement.largest < BOUND else "MISS"
    outcome = measurement.outcome
    if len(outcome) > 70:
        outcome = outcome[:69] + "…"
    return (
        f"{measurement.name:<24}{measurement.input_bytes / MiB:>10,.2f}"
        f"{measurement.unpacked_bytes / MiB:>10,.1f}"
        f"{measurement.seconds:>9.1f}{measurement.writer_rss / MiB:>9,.0f}"
        f"{measurement.reader_rss / MiB:>9,.0f}"
        f"{measurement.largest / baseline.largest:>9.2f}x  {verdict}  {outcome}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="times the full sizes")
    parser.add_argument("--students", type=int, default=DEFAULT_STUDENTS)
    parser.add_argument(
        "--drops", type=lambda names: names.split(","), default=list(HOSTILE_DROPS),
        help="comma-separated names of the drops to load (default: all)",
    )
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="industrydata-bench-limits-") as folder:
        work = Path(folder)
        roster = work / "roster"
        roster.mkdir()
        for file, text in BASE_SDS.items():
            (roster / file).write_text(text)
        district = work / "district"
        generate_sds_csv(district, students=options.students, seed=1)
        baseline = _in_child(
            measure, "honest district", "sds-csv", district, roster, work / "baseline.db"
        )
        measured = []
        for n, name in enumerate(options.drops):
            kind, make, full = HOSTILE_DROPS[name]
            size = max(1, int(full * options.scale)) if full else 0
            started = time.perf_counter()
            drop = _in_child(make, work / f"drop{n}", size)
            made = time.perf_counter() - started
            result = _in_child(measure, name, kind, drop, roster, work / f"store{n}.db")
            measured.append((result, size, made))
    print(
        f"baseline: an honest district of {options.students:,} students "
        f"({baseline.input_bytes / MiB:,.1f} MiB); RSS in MiB, bound {BOUND // MiB} MiB per process"
    )
    print()
    columns = ("MiB", "unpacked", "wall s", "writer", "reader", "/ base")
    widths = (10, 10, 9, 9, 9, 10)
    header = "".join(f"{name:>{width}}" for name, width in zip(columns, widths, strict=True))
    print(f"{'drop':<24}{header}  bound outcome")
    print(_row(baseline, baseline))
    for result, _, _ in measured:
        print(_row(result, baseline))
    print()
    print("drop sizes (the maker's parameter) and the time to make each:")
    for result, size, made in measured:
        print(f"  {result.name:<24}{size:>15,}{made:>8.1f} s")
    worst = max((result for result, _, _ in measured), key=lambda result: result.largest)
    everything = all(result.largest < BOUND for result, _, _ in measured)
    summed = max(result.writer_rss + result.reader_rss for result, _, _ in measured)
    print()
    print(
        f"largest process: {worst.largest / MiB:,.0f} MiB ({worst.name}); "
        f"writer + reader at most {summed / MiB:,.0f} MiB"
    )
    verdict = "PASS" if everything else "MISS"
    print(f"target peak RSS under {BOUND // MiB} MiB for every drop: {verdict}")


if __name__ == "__main__":
    main(sys.argv[1:])
