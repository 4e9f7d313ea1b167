"""Peak memory and time of the importer on hostile drops, against an honest district loaded
in the same run; prints the measurements and the 512 MiB bound, never asserts.

    .venv/bin/python bench/importer_limits.py                  # full sizes (the issue's)
    .venv/bin/python bench/importer_limits.py --scale 0.01     # a quick look
    .venv/bin/python bench/importer_limits.py --drops "" --districts 250000,500000 --against main

Every drop of the corpus (``tests/canonical/hostile_drops.py``) is made at its full size
times ``--scale`` and loaded into a fresh SQLite store holding a small roster, each load in
a process of its own, made in another: the writer's peak RSS is its ``VmHWM`` (Linux; its
``ru_maxrss`` would start at the RSS of the process that forked it), the reader process of a
large upload is watched by a thread of the writer that reads its ``VmHWM`` every 0.1 s. The
baseline is an honest district (``canonical.generator``) of ``--students`` students, loaded
the same way. The bound is per process: the writing process and its reader each stay under
512 MiB; their sum is printed too.

Large valid districts (``--districts``): memory then grows with the number of distinct keys,
not with hostile bytes. Each district is generated and loaded the same way (on top of the
small roster, so the writer keeps the identifier ids it writes as on a reload), by this
code and, with ``--against REV``, by the code of git revision ``REV`` (``git archive`` into
the temporary folder), one after the other in the same run; time and peak RSS are compared.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self

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


def _high_water(pid: int | str) -> int:
    """``VmHWM`` of a process in bytes (0 once it is gone, or a zombie without memory)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    lines = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(lines[0].split()[1]) * 1024 if lines else 0


class ChildPeaks:
    """The highest ``VmHWM`` of this process's children, read every 0.1 s by a thread (a
    child's ``ru_maxrss`` would start at this process's RSS when it forked)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            for task in Path("/proc/self/task").iterdir():
                try:
                    children = (task / "children").read_text().split()
                except OSError:
                    continue
                for child in children:
                    self.peak = max(self.peak, _high_water(child))


def measure(name: str, kind: str, drop: Path, roster: Path, store: Path) -> Measurement:
    """Load ``drop`` into a fresh store holding ``roster``'s rows (in a process of its own)."""
    engine = create_store_engine(f"sqlite:///{store}", pooled=False)
    try:
        upgrade_to_head(engine)
        load_sds_csv(engine, roster, tenant_id=TENANT, parallel=False)
        load = load_sds_csv if kind == "sds-csv" else load_sds_lake
        started = time.perf_counter()
        with ChildPeaks() as reader:
            try:
                report = load(engine, drop, tenant_id=TENANT, report_path=store.with_suffix(".csv"))
                outcome = f"loaded, {report.rejected_records:,} rejected"
            except LoadError as error:
                outcome = f"refused: {error}"
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    writer = _high_water("self")
    return Measurement(name, _size(drop), _unpacked(drop), outcome, seconds, writer, reader.peak)


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


def _measure_district(drop: Path, roster: Path, store: Path) -> None:
    """Print the measurement of one large district as JSON (run by ``--measure-district`` in
    a process whose ``PYTHONPATH`` picks the code measured)."""
    measured = measure("district", "sds-csv", drop, roster, store)
    print(json.dumps(measured.__dict__))


def _code_of(revision: str, folder: Path) -> Path:
    """The ``src`` folder of git revision ``revision`` unpacked into ``folder``, or
    ``revision`` itself when it is such a folder already."""
    if (Path(revision) / "industrydata").is_dir():
        return Path(revision)
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", revision, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def _district_in(code: Path, name: str, drop: Path, roster: Path, store: Path) -> Measurement:
    environment = os.environ | {"PYTHONPATH": str(code)}
    command = [sys.executable, __file__, "--measure-district", str(drop), str(roster), str(store)]
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        return Measurement(
            name, _size(drop), _size(drop), f"failed: {finished.stderr[-200:]}", 0.0, 0, 0
        )
    values = json.loads(finished.stdout.splitlines()[-1])
    return Measurement(**(values | {"name": name}))


def _districts(sizes: list[int], against: str | None, work: Path, roster: Path) -> None:
    """Load each large valid district with this code (and ``against``'s), print the table."""
    codes = [("this code", Path(__file__).resolve().parents[1] / "src")]
    if against:
        codes.append((against, _code_of(against, work / "against")))
    rows = []
    for students in sizes:
        district = work / f"district-{students}"
        generate_sds_csv(district, students=students, seed=1)
        for label, code in codes:
            store = work / f"district-{students}-{len(rows)}.db"
            measured = _district_in(code, f"{students:,} students", district, roster, store)
            rows.append((label, measured))
            for suffix in ("", "-wal", "-shm", ".csv"):
                Path(f"{store}{suffix}").unlink(missing_ok=True)
            store.with_suffix(".csv").unlink(missing_ok=True)
        for path in district.iterdir():
            path.unlink()
        district.rmdir()
    print(f"large valid districts: RSS in MiB, bound {BOUND // MiB} MiB per process")
    print()
    print(
        f"{'district':<18}{'code':<14}{'MiB':>9}{'load s':>9}{'writer':>9}{'reader':>9}"
        f"{'s / ' + (against or 'this'):>14}  bound outcome"
    )
    seconds_of = {}
    for label, measured in rows:
        seconds_of.setdefault(measured.name, {})[label] = measured.seconds
    for label, measured in rows:
        reference = seconds_of[measured.name].get(against or "this code") or measured.seconds
        ratio = measured.seconds / reference if reference else float("nan")
        verdict = "PASS" if 0 < measured.largest < BOUND else "MISS"
        print(
            f"{measured.name:<18}{label:<14}{measured.input_bytes / MiB:>9,.1f}"
            f"{measured.seconds:>9.1f}{measured.writer_rss / MiB:>9,.0f}"
            f"{measured.reader_rss / MiB:>9,.0f}{ratio:>13.2f}x  {verdict}  {measured.outcome}"
        )
    mine = [measured for label, measured in rows if label == "this code"]
    verdict = "PASS" if all(0 < m.largest < BOUND for m in mine) else "MISS"
    print()
    print(f"target peak RSS under {BOUND // MiB} MiB for every district (this code): {verdict}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="times the full sizes")
    parser.add_argument("--students", type=int, default=DEFAULT_STUDENTS)
    parser.add_argument(
        "--drops",
        type=lambda names: [name for name in names.split(",") if name],
        default=list(HOSTILE_DROPS),
        help='comma-separated names of the drops to load (default: all; "" for none)',
    )
    parser.add_argument(
        "--districts",
        type=lambda sizes: [int(size) for size in sizes.split(",") if size],
        default=[],
        help="comma-separated student counts of large valid districts to load",
    )
    parser.add_argument(
        "--against",
        default=None,
        help="git revision (or src folder) whose code also loads the districts, for the "
        "time ratio (e.g. main)",
    )
    parser.add_argument("--measure-district", nargs=3, type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.measure_district:
        _measure_district(*options.measure_district)
        return
    with tempfile.TemporaryDirectory(prefix="industrydata-bench-limits-") as folder:
        work = Path(folder)
        roster = work / "roster"
        roster.mkdir()
        for file, text in BASE_SDS.items():
            (roster / file).write_text(text)
        if options.drops:
            _drops(options, work, roster)
        if options.districts:
            if options.drops:
                print()
            _districts(options.districts, options.against, work, roster)


def _drops(options: argparse.Namespace, work: Path, roster: Path) -> None:
    """Load the honest baseline and each hostile drop, print the table."""
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
