"""Every independent reader reads exactly the store's rows from the ``delta`` writer's tables.

Each scenario builds a small lake once (a module-scoped fixture) and records what the store
held at every table version; every reader of ``delta_readers`` then reads every version it
can reach and must give the same row multiset, and both Change Data Feed readers must give
exactly what the store changed between versions: inserts, deletes, and updates as
``update_preimage``/``update_postimage`` pairs, nothing for a row that was only moved (a
run that replaces a table whole, whose files another writer rewrote, reads as a reload:
every old row deleted, every new one inserted).

Scenarios: the first write and incremental runs, with and without deletion vectors; a
table past a checkpoint; the consumer's OPTIMIZE and VACUUM (delta-rs) followed by more
runs; a consumer's OPTIMIZE committing between a run's read of the log and its commit; and
one end to end through a SQLite store and ``runs.export``. Readers without deletion vector
support must refuse tables with the feature (that is what the compatibility table in
``docs/lake-layout.md`` says). Every scenario's logs also pass ``delta_protocol``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import DeltaProtocolError
from sqlalchemy import delete, insert, select, update

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest.sds_csv import load_sds_csv
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CanonicalTable, table_by_name
from industrydata.lake import LocalDestination, write_delta
from industrydata.lake._delta_log import CHECKPOINT_INTERVAL
from industrydata.runs.export import export_snapshot
from industrydata.store import create_store_engine, upgrade_to_head

from .delta_protocol import delta_tables, validate_table
from .delta_readers import (
    CHANGE_READERS,
    READERS,
    ChangeReader,
    Reader,
    change_multiset,
    row_multiset,
    store_changes,
)
from .delta_support import FakeChanges

FIRST_RUN = datetime(2026, 11, 27, 6, 0, 0)
SEEN = datetime(2026, 9, 1, 7, 30, 0, tzinfo=timezone.utc)
ENROLLMENT = table_by_name("Enrollment")
EMAIL = table_by_name("PersonEmailAddress")
PERSON = table_by_name("Person")
TENANT = "5d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
Rows = Callable[[CanonicalTable], pa.Table]


@dataclass
class Lake:
    """Tables written by a scenario, and what each of their versions must hold."""

    root: Path
    tables: tuple[CanonicalTable, ...]
    deletion_vectors: bool
    history: dict[str, dict[int, pa.Table]] = field(default_factory=dict)
    """Table name → version → the rows it must hold."""
    oldest_readable: dict[str, int] = field(default_factory=dict)
    """Table name → its oldest version whose files are still there (VACUUM removes older)."""
    replaced: dict[str, set[int]] = field(default_factory=dict)
    """Table name → the writer's versions that replaced it whole."""
    runs: int = 0

    def path(self, table: CanonicalTable) -> Path:
        return self.root / table.name

    def run(
        self, rows: Rows, write: Callable[[datetime], object], *, replaces: bool = False
    ) -> None:
        """One run of the writer (``write`` given its run time), after which each table's
        newest version holds ``rows(table)``; versions committed meanwhile by someone else
        hold the rows of the version before them. A run that ``replaces`` the tables whole
        (their files have no row-number locators) reads as a full reload in the feed."""
        write(FIRST_RUN + timedelta(minutes=self.runs))
        self.runs += 1
        self._record(rows)
        for table in self.tables if replaces else ():
            self.replaced.setdefault(table.name, set()).add(max(self.history[table.name]))

    def consumer(
        self, operation: Callable[[DeltaTable], object], *, deletes_removed_files: bool = False
    ) -> None:
        """A consumer's operation on every table that changes no row (OPTIMIZE, or a VACUUM
        that ``deletes_removed_files``, after which versions before the newest are gone)."""
        for table in self.tables:
            if deletes_removed_files:
                self.oldest_readable[table.name] = max(self.history[table.name])
            operation(DeltaTable(str(self.path(table))))
        self._record(None)

    def changes(self, table: CanonicalTable, start: int) -> Counter[tuple]:
        """What a change feed from version ``start`` to the newest must show."""
        history = self.history[table.name]
        expected: Counter[tuple] = Counter()
        for version in range(start, max(history) + 1):
            before, after = history.get(version - 1), history[version]
            replaced = version in self.replaced.get(table.name, ())
            expected += store_changes(before, after, table, version, replaced=replaced)
        return expected

    def _record(self, rows: Rows | None) -> None:
        """The versions committed since the last record: the newest holds ``rows`` (None:
        nothing of ours), the others their predecessor's rows."""
        for table in self.tables:
            history = self.history.setdefault(table.name, {})
            newest = DeltaTable(str(self.path(table))).version()
            for version in range(max(history, default=-1) + 1, newest + 1):
                ours = rows is not None and version == newest
                history[version] = rows(table) if ours else history[version - 1]


def _enrollment(index: int, *, exit_date: str | None = None) -> dict:
    return {
        "Id": f"e{index:04d}",
        "ExternalId": f"x-{index}" if index % 5 else None,
        "FirstSeenDateTime": SEEN + timedelta(minutes=index),
        "IsActiveInSession": None if index % 7 == 0 else index % 2 == 0,
        "PersonId": f"p{index % 13:04d}",
        "SectionId": f"s{index % 4}",
        "EntryDate": "2026-09-01",
        "ExitDate": exit_date,
        "IsPrimaryStaffForSection": index % 3 == 0,
    }


def _email(index: int, *, address: str | None = None) -> dict:
    return {
        "Id": f"m{index:04d}",
        "EmailAddress": address or f"person{index}@school.example",
        "FirstSeenDateTime": SEEN,
        "PersonId": f"p{index:04d}",
        "PriorityOrder": None if index % 6 == 0 else index % 3,
    }


class _FakeStoreLake:
    """A scenario's lake fed by ``FakeChanges``, the store stand-in."""

    def __init__(self, root: Path, *, deletion_vectors: bool = True) -> None:
        self.store = FakeChanges()
        self.lake = Lake(root, (ENROLLMENT, EMAIL), deletion_vectors)
        self.destination = LocalDestination(root)

    def run(
        self, destination: LocalDestination | None = None, *, replaces: bool = False
    ) -> None:
        def write(run_time: datetime) -> object:
            return write_delta(
                destination or self.destination,
                run_id=f"run-{self.lake.runs}",
                run_time=run_time,
                tables=self.lake.tables,
                source=self.store,
                deletion_vectors=self.lake.deletion_vectors,
            )

        self.lake.run(self.store.current, write, replaces=replaces)

    def first_rows(self) -> None:
        self.store.put(ENROLLMENT, [_enrollment(index) for index in range(40)])
        self.store.put(EMAIL, [_email(index) for index in range(20)])

    def some_changes(self, step: int) -> None:
        """Updates, inserts and deletes spread over the table's files."""
        self.store.put(
            ENROLLMENT,
            [_enrollment(index, exit_date=f"2026-1{step}-01") for index in (1, 17, 30 + step)]
            + [_enrollment(100 + step * 10 + index) for index in range(2)],
        )
        self.store.delete(ENROLLMENT, [(f"e{5 + step:04d}",), (f"e{20 + step:04d}",)])
        self.store.put(EMAIL, [_email(2 + step, address=f"changed{step}@school.example")])
        self.store.delete(EMAIL, [(f"m{10 + step:04d}",)])


def _first_write(root: Path, *, deletion_vectors: bool) -> Lake:
    scenario = _FakeStoreLake(root, deletion_vectors=deletion_vectors)
    scenario.first_rows()
    scenario.run()
    return scenario.lake


def _incremental(root: Path, *, deletion_vectors: bool) -> Lake:
    """Changes over several runs: rows changed twice, a file most of whose rows go (the
    writer rewrites it), and a run without changes."""
    scenario = _FakeStoreLake(root, deletion_vectors=deletion_vectors)
    scenario.first_rows()
    scenario.run()
    scenario.some_changes(1)
    scenario.run()
    scenario.some_changes(2)
    scenario.store.put(ENROLLMENT, [_enrollment(101, exit_date="2026-12-24")])
    scenario.store.delete(EMAIL, [(f"m{index:04d}",) for index in range(13, 20)])
    scenario.run()
    scenario.run()
    return scenario.lake


def _checkpoint(root: Path) -> Lake:
    scenario = _FakeStoreLake(root)
    scenario.first_rows()
    scenario.run()
    for step in range(1, CHECKPOINT_INTERVAL + 2):
        scenario.store.put(ENROLLMENT, [_enrollment(step, exit_date=f"2027-01-{step:02d}")])
        scenario.store.put(EMAIL, [_email(step, address=f"run{step}@school.example")])
        scenario.run()
    checkpoint = f"{CHECKPOINT_INTERVAL:020d}.checkpoint.parquet"
    assert (root / ENROLLMENT.name / "_delta_log" / checkpoint).exists()
    return scenario.lake


def _optimize_then_vacuum(root: Path) -> Lake:
    """The consumer compacts and vacuums with delta-rs; the writer then replaces each table
    (its files have no row-number locators any more) and continues incrementally."""
    scenario = _FakeStoreLake(root)
    scenario.first_rows()
    scenario.run()
    scenario.some_changes(1)
    scenario.run()
    scenario.lake.consumer(lambda delta: delta.optimize.compact())
    scenario.lake.consumer(
        lambda delta: delta.vacuum(
            retention_hours=0, enforce_retention_duration=False, dry_run=False
        ),
        deletes_removed_files=True,
    )
    scenario.some_changes(2)
    scenario.run(replaces=True)
    scenario.some_changes(3)
    scenario.run()
    return scenario.lake


class _OptimizingDestination(LocalDestination):
    """A local destination where the consumer's OPTIMIZE commits to each table just before
    the writer's first attempt to commit to it: the writer loses that version."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.raced: set[str] = set()

    def create_new(self, path: str, data: bytes) -> bool:
        table, _, rest = path.partition("/_delta_log/")
        if rest.endswith(".json") and table not in self.raced:
            self.raced.add(table)
            DeltaTable(str(self.root / table)).optimize.compact()
        return super().create_new(path, data)


def _commit_race(root: Path) -> Lake:
    scenario = _FakeStoreLake(root)
    scenario.first_rows()
    scenario.run()
    scenario.some_changes(1)
    scenario.run()
    scenario.some_changes(2)
    scenario.run(_OptimizingDestination(root), replaces=True)
    for table in scenario.lake.tables:
        versions = scenario.lake.history[table.name]
        assert max(versions) == 3, f"{table.name}: the run did not commit after the race"
    return scenario.lake


def _store_export(root: Path) -> Lake:
    """A generated roster loaded into a SQLite store, exported by ``runs.export``, changed
    with plain SQL (the store's triggers track it), and exported again twice."""
    url = f"sqlite:///{root / 'store.db'}"
    engine = create_store_engine(url, pooled=False)
    upgrade_to_head(engine)
    generate_sds_csv(root / "drop", students=12, seed=9)
    load_sds_csv(engine, root / "drop", tenant_id=TENANT)
    lake = Lake(root / "lake", (PERSON, ENROLLMENT), deletion_vectors=True)
    person, enrollment = sql_table(PERSON), sql_table(ENROLLMENT)

    def rows(table: CanonicalTable) -> pa.Table:
        stored = sql_table(table)
        query = select(*(stored.c[name] for name in table.column_names)).where(
            stored.c[TENANT_COLUMN] == TENANT
        )
        with engine.connect() as connection:
            found = [dict(row._mapping) for row in connection.execute(query)]
        return pa.Table.from_pylist(found, schema=arrow_schema(table))

    def export(run_time: datetime) -> object:
        return export_snapshot(
            url,
            TENANT,
            LocalDestination(lake.root),
            format="delta",
            run_id=f"run-{lake.runs}",
            snapshot_time=run_time,
            deletion_vectors=lake.deletion_vectors,
        )

    lake.root.mkdir()
    lake.run(rows, export)
    with engine.begin() as connection:
        first_people = select(person.c.Id).order_by(person.c.Id).limit(3).scalar_subquery()
        connection.execute(
            update(person).where(person.c.Id.in_(first_people)).values(GivenName="Changed")
        )
        victims = select(enrollment.c.Id).order_by(enrollment.c.Id).limit(2).scalar_subquery()
        connection.execute(delete(enrollment).where(enrollment.c.Id.in_(victims)))
        connection.execute(insert(person).values({TENANT_COLUMN: TENANT, "Id": "new-person"}))
    lake.run(rows, export)
    with engine.begin() as connection:
        connection.execute(
            update(enrollment)
            .where(enrollment.c[TENANT_COLUMN] == TENANT)
            .values(ExitDate="2027-06-30")
        )
    lake.run(rows, export)
    engine.dispose()
    return lake


SCENARIOS: dict[str, Callable[[Path], Lake]] = {
    "first-write": lambda root: _first_write(root, deletion_vectors=True),
    "first-write-without-dvs": lambda root: _first_write(root, deletion_vectors=False),
    "incremental": lambda root: _incremental(root, deletion_vectors=True),
    "incremental-without-dvs": lambda root: _incremental(root, deletion_vectors=False),
    "checkpoint": _checkpoint,
    "optimize-vacuum": _optimize_then_vacuum,
    "commit-race": _commit_race,
    "store-export": _store_export,
}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(name, marks=[pytest.mark.slow] if name == "store-export" else [])
        for name in SCENARIOS
    ],
)
def lake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return SCENARIOS[request.param](tmp_path_factory.mktemp(request.param))


def _reader_params(readers: tuple, slow: set[str]) -> list:
    marks = [pytest.mark.slow]
    return [
        pytest.param(reader, id=reader.name, marks=marks if reader.name in slow else [])
        for reader in readers
    ]


@pytest.mark.parametrize("reader", _reader_params(READERS, slow=set()))
def test_reader_reads_the_store_rows_at_every_version(lake: Lake, reader: Reader) -> None:
    for table in lake.tables:
        path, history = lake.path(table), lake.history[table.name]
        if lake.deletion_vectors and not reader.deletion_vectors:
            with pytest.raises(DeltaProtocolError, match="deletionVectors"):
                reader.read(path, None)
            continue
        assert row_multiset(reader.read(path, None), table) == row_multiset(
            history[max(history)], table
        ), f"{table.name} at its newest version"
        if not reader.time_travel:
            continue
        for version in range(lake.oldest_readable.get(table.name, 0), max(history) + 1):
            assert row_multiset(reader.read(path, version), table) == row_multiset(
                history[version], table
            ), f"{table.name} at version {version}"


@pytest.mark.parametrize("reader", _reader_params(CHANGE_READERS, slow={"deltalake-load_cdf"}))
def test_change_feed_holds_exactly_what_the_store_changed(lake: Lake, reader: ChangeReader) -> None:
    for table in lake.tables:
        start = lake.oldest_readable.get(table.name, 0)
        newest = max(lake.history[table.name])
        changes = change_multiset(reader.read(lake.path(table), start, newest), table)
        assert changes == lake.changes(table, start), f"{table.name} from version {start}"


def test_logs_follow_the_protocol(lake: Lake) -> None:
    """The scenarios' folders come from ``tmp_path_factory``, which the per-test check of
    ``tests/conftest.py`` does not walk."""
    tables = delta_tables(lake.root)
    assert {table.name for table in lake.tables} <= {path.name for path in tables}
    for path in tables:
        assert validate_table(path) == [], path.name
