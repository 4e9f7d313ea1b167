"""The Change Data Feed of the delta writer's tables gives exactly the rows that changed.

A commit that changes rows already in the table carries a change data file
(``_change_data/``, a ``cdc`` action): an updated row appears as its ``update_preimage`` (the
old values) and ``update_postimage``, a removed row as ``delete``, a new row as ``insert``;
rows a rewrite only moves do not appear. A commit that only inserts has none: readers take
its ``add`` actions as inserts. A table replaced whole reads, like Spark's overwrite, as the
delete of every old row and the insert of every new one. Each version is read back by two
change feed readers that are not the writer (deltalake's ``load_cdf`` and delta-kernel-rs
through ``delta_kernel_rust_sharing_wrapper``) and compared, as a multiset of rows, with
what the store changed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import delta_kernel_rust_sharing_wrapper as kernel
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.tables import CanonicalTable, table_by_name
from industrydata.errors import ExportError
from industrydata.lake import LocalDestination, write_delta
from industrydata.lake import delta as delta_module
from industrydata.lake._delta_log import CHECKPOINT_INTERVAL, read_state
from industrydata.lake.delta import CHANGE_DATA_FOLDER, CHANGE_TYPE

from .delta_support import FakeChanges, read_delta

FIRST_RUN = datetime(2026, 11, 27, 6, 0, 0)
SEEN = datetime(2021, 9, 5, 6, 16, 22, 5000, timezone.utc)
PERSON = table_by_name("Person")
MEMBERSHIP = table_by_name("AadGroupMembership")
BOTH_MODES = pytest.mark.parametrize("deletion_vectors", [True, False], ids=["dv", "rewrite"])


def _load_cdf(table_path: Path, first: int, last: int) -> pa.Table:
    delta = DeltaTable(str(table_path))
    return pa.table(delta.load_cdf(starting_version=first, ending_version=last))


def _kernel_changes(table_path: Path, first: int, last: int) -> pa.Table:
    uri = table_path.as_uri()
    interface = kernel.PythonInterface(uri)
    scan = kernel.TableChangesScanBuilder(kernel.Table(uri), interface, first, last).build()
    return scan.execute(interface).read_all()


READERS: dict[str, Callable[[Path, int, int], pa.Table]] = {
    "deltalake load_cdf": _load_cdf,
    "delta-kernel-rs": _kernel_changes,
}

Changes = Counter[tuple]
"""Changed rows as a multiset of (version, change type, *the table's columns)."""


def _read_changes(
    table_path: Path, table: CanonicalTable, reader: str, first: int, last: int
) -> Changes:
    """What ``reader`` gives for versions ``first`` to ``last``."""
    data = READERS[reader](table_path, first, last)
    rows = data.select(table.column_names).cast(arrow_schema(table)).to_pylist()
    return Counter(
        (version, change, *row.values())
        for version, change, row in zip(
            data["_commit_version"].to_pylist(), data[CHANGE_TYPE].to_pylist(), rows
        )
    )


def _diff(version: int, table: CanonicalTable, before: pa.Table, after: pa.Table) -> Changes:
    """The changes from ``before`` to ``after`` (store snapshots), rows matched by key."""

    def by_key(data: pa.Table) -> dict[tuple, tuple]:
        return {
            tuple(row[name] for name in table.key): tuple(row.values())
            for row in data.to_pylist()
        }

    old, new = by_key(before), by_key(after)
    changes: Changes = Counter()
    for key in old.keys() - new.keys():
        changes[(version, "delete", *old[key])] += 1
    for key in new.keys() - old.keys():
        changes[(version, "insert", *new[key])] += 1
    for key in old.keys() & new.keys():
        if old[key] != new[key]:
            changes[(version, "update_preimage", *old[key])] += 1
            changes[(version, "update_postimage", *new[key])] += 1
    return changes


class _Table:
    """One canonical table written by the writer run after run, with the changes each
    run's commit should carry."""

    def __init__(self, root: Path, table: CanonicalTable, *, deletion_vectors: bool) -> None:
        self.root = root
        self.table = table
        self.store = FakeChanges()
        self.deletion_vectors = deletion_vectors
        self.version = -1
        self.expected: Changes = Counter()
        self._runs = 0

    @property
    def path(self) -> Path:
        return self.root / self.table.name

    def run(self, change: Callable[[FakeChanges], None]) -> None:
        """Change the store, run the writer; record what the new version changed."""
        before = self.store.current(self.table)
        change(self.store)
        write_delta(
            LocalDestination(self.root),
            run_id=f"run-{self._runs}",
            run_time=FIRST_RUN + timedelta(minutes=self._runs),
            tables=[self.table],
            source=self.store,
            deletion_vectors=self.deletion_vectors,
        )
        self._runs += 1
        self.version += 1
        self.expected += _diff(self.version, self.table, before, self.store.current(self.table))

    def actions(self, version: int) -> list[dict]:
        entry = self.path / "_delta_log" / f"{version:020d}.json"
        return [json.loads(line) for line in entry.read_text().splitlines()]

    def expected_between(self, first: int, last: int) -> Changes:
        return Counter(
            {row: count for row, count in self.expected.items() if first <= row[0] <= last}
        )

    def assert_changes(
        self, first: int, last: int | None = None, *, readers: tuple[str, ...] = tuple(READERS)
    ) -> None:
        """Every reader gives the changes expected from version ``first`` to ``last``
        (default: the newest), and the table holds the store's rows."""
        last = self.version if last is None else last
        expected = self.expected_between(first, last)
        for reader in readers:
            found = _read_changes(self.path, self.table, reader, first, last)
            assert found == expected, (reader, found - expected, expected - found)
        assert read_delta(str(self.path), self.table).equals(self.store.current(self.table))


def _people(count: int, *, name: str = "Ada", start: int = 0) -> list[dict]:
    return [
        {"Id": f"p{index:04d}", "GivenName": name, "LastSeenDateTime": SEEN}
        for index in range(start, start + count)
    ]


def _ids(indexes: range | list[int]) -> list[tuple]:
    return [(f"p{index:04d}",) for index in indexes]


def _cdc_actions(person: _Table, version: int) -> list[dict]:
    return [action["cdc"] for action in person.actions(version) if "cdc" in action]


@BOTH_MODES
def test_deleted_rows_read_as_exactly_those_deletes(
    tmp_path: Path, deletion_vectors: bool
) -> None:
    person = _Table(tmp_path, PERSON, deletion_vectors=deletion_vectors)
    person.run(lambda store: store.put(PERSON, _people(1000)))

    person.run(lambda store: store.delete(PERSON, _ids(range(100, 1000, 6))))

    assert person.expected_between(1, 1) == Counter(
        {row: 1 for row in person.expected_between(1, 1) if row[1] == "delete"}
    )
    assert sum(person.expected_between(1, 1).values()) == 150
    person.assert_changes(1)
    person.assert_changes(0)
    (cdc,) = _cdc_actions(person, 1)
    assert cdc["dataChange"] is False and cdc["partitionValues"] == {}
    assert cdc["path"].startswith(f"{CHANGE_DATA_FOLDER}/")
    change_data = pq.read_table(person.path / cdc["path"])
    assert change_data.schema == delta_module.delta_schema(PERSON).append(
        pa.field(CHANGE_TYPE, pa.string(), nullable=False)
    )
    assert change_data.num_rows == 150
    assert cdc["size"] == (person.path / cdc["path"]).stat().st_size


@BOTH_MODES
def test_updated_rows_read_as_preimages_and_postimages(
    tmp_path: Path, deletion_vectors: bool
) -> None:
    person = _Table(tmp_path, PERSON, deletion_vectors=deletion_vectors)
    person.run(lambda store: store.put(PERSON, _people(200)))

    def change(store: FakeChanges) -> None:
        store.put(PERSON, _people(7, name="Changed", start=20) + _people(3, start=500))
        store.delete(PERSON, _ids([0, 1]))

    person.run(change)

    kinds = Counter(row[1] for row in person.expected_between(1, 1).elements())
    assert kinds == {"update_preimage": 7, "update_postimage": 7, "insert": 3, "delete": 2}
    person.assert_changes(1)
    assert len(_cdc_actions(person, 1)) == 1


@BOTH_MODES
def test_commit_that_only_inserts_has_no_change_data_and_reads_as_inserts(
    tmp_path: Path, deletion_vectors: bool
) -> None:
    person = _Table(tmp_path, PERSON, deletion_vectors=deletion_vectors)
    person.run(lambda store: store.put(PERSON, _people(10)))

    person.run(lambda store: store.put(PERSON, _people(5, start=10)))

    assert not _cdc_actions(person, 1)
    assert not (person.path / CHANGE_DATA_FOLDER).exists()
    assert Counter(row[1] for row in person.expected_between(1, 1).elements()) == {"insert": 5}
    person.assert_changes(1)


@BOTH_MODES
def test_rows_moved_by_a_rewrite_do_not_appear(
    tmp_path: Path, deletion_vectors: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_module, "MAX_FILE_ROWS", 40)
    person = _Table(tmp_path, PERSON, deletion_vectors=deletion_vectors)
    person.run(lambda store: store.put(PERSON, _people(120)))
    first_files = set(read_state(LocalDestination(tmp_path), "Person").files)

    def change(store: FakeChanges) -> None:
        # The first file (p0000-p0039) loses 25 rows: more than half, so it is rewritten.
        store.put(PERSON, _people(15, name="Changed"))
        store.delete(PERSON, _ids(range(15, 25)))

    person.run(change)

    state = read_state(LocalDestination(tmp_path), "Person")
    assert len(first_files - set(state.files)) == 1  # the mostly deleted file, rewritten
    assert sum(person.expected_between(1, 1).values()) == 15 * 2 + 10
    person.assert_changes(1)


@BOTH_MODES
def test_changes_over_many_runs_read_the_same_across_a_checkpoint(
    tmp_path: Path, deletion_vectors: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_module, "MAX_FILE_ROWS", 16)
    person = _Table(tmp_path, PERSON, deletion_vectors=deletion_vectors)
    person.run(lambda store: store.put(PERSON, _people(64)))
    for run in range(1, CHECKPOINT_INTERVAL + 3):

        def change(store: FakeChanges, run: int = run) -> None:
            changed = _people(2, name=f"run {run}", start=run * 3)
            store.put(PERSON, changed + _people(1, start=run + 100))
            store.delete(PERSON, _ids([run * 5 + 1]))

        person.run(change)

    log = person.path / "_delta_log"
    assert (log / f"{CHECKPOINT_INTERVAL:020d}.checkpoint.parquet").exists()
    person.assert_changes(0)
    person.assert_changes(CHECKPOINT_INTERVAL - 1, CHECKPOINT_INTERVAL + 2)
    person.assert_changes(CHECKPOINT_INTERVAL + 1)


def test_every_data_file_has_one_row_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_module, "MAX_FILE_ROWS", 50)
    person = _Table(tmp_path, PERSON, deletion_vectors=True)
    person.run(lambda store: store.put(PERSON, _people(120)))  # the store's batches hold 2 rows
    person.run(lambda store: store.put(PERSON, _people(60, name="Changed", start=30)))

    state = read_state(LocalDestination(tmp_path), "Person")
    footers = [pq.ParquetFile(tmp_path / "Person" / path).metadata for path in state.files]
    # 50, 50, 20 rows; then 60 changed rows, and the 10 left of the second file moved.
    assert sorted(footer.num_rows for footer in footers) == [20, 20, 50, 50]
    assert [footer.num_row_groups for footer in footers] == [1, 1, 1, 1]
    person.assert_changes(0)


@pytest.mark.parametrize("least_rows", [1, 4])
def test_change_data_is_written_in_row_groups_of_at_least_the_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, least_rows: int
) -> None:
    monkeypatch.setattr(delta_module, "_BATCH_ROWS", least_rows)
    person = _Table(tmp_path, PERSON, deletion_vectors=True)
    person.run(lambda store: store.put(PERSON, _people(40)))

    person.run(lambda store: store.put(PERSON, _people(9, name="Changed", start=3)))

    (cdc,) = _cdc_actions(person, 1)
    footer = pq.ParquetFile(person.path / cdc["path"]).metadata
    groups = [footer.row_group(index).num_rows for index in range(footer.num_row_groups)]
    assert sum(groups) == 18 and len(groups) > 1
    assert min(groups[:-1]) >= least_rows
    person.assert_changes(1)


def test_a_composite_key_table_with_every_change(tmp_path: Path) -> None:
    members = _Table(tmp_path, MEMBERSHIP, deletion_vectors=True)
    rows = [
        {"GroupObjectId": f"g{group}", "UserObjectId": f"u{user}", "Role": "member"}
        for group in range(3)
        for user in range(10)
    ]
    members.run(lambda store: store.put(MEMBERSHIP, rows))

    def change(store: FakeChanges) -> None:
        store.put(MEMBERSHIP, [{"GroupObjectId": "g1", "UserObjectId": "u1", "Role": "owner"}])
        store.put(MEMBERSHIP, [{"GroupObjectId": "g9", "UserObjectId": "u1", "Role": "member"}])
        store.delete(MEMBERSHIP, [("g2", "u2"), ("g0", "u0")])

    members.run(change)

    members.assert_changes(1)


@pytest.mark.parametrize(
    ("reader", "deletion_vectors"),
    [
        ("delta-kernel-rs", True),
        ("delta-kernel-rs", False),
        ("deltalake load_cdf", False),
        pytest.param(
            "deltalake load_cdf",
            True,
            marks=pytest.mark.xfail(
                strict=True,
                reason="deltalake 1.6.6 reads a removed file that has a deletion vector as "
                "the delete of the rows its vector deleted, not of its live rows",
            ),
        ),
    ],
)
def test_table_replaced_whole_reads_as_every_old_row_deleted_and_every_new_inserted(
    tmp_path: Path, reader: str, deletion_vectors: bool
) -> None:
    person = _Table(tmp_path, PERSON, deletion_vectors=deletion_vectors)
    person.run(lambda store: store.put(PERSON, _people(30)))
    person.run(lambda store: store.delete(PERSON, _ids([3, 4])))  # a deletion vector
    old_rows = person.store.current(PERSON)
    person.store = FakeChanges()  # another store: the table cannot be continued
    person.store.put(PERSON, _people(5, name="Other", start=2))

    person.run(lambda store: None)

    for row in old_rows.to_pylist():
        person.expected[(2, "delete", *row.values())] += 1
    for row in person.store.current(PERSON).to_pylist():
        person.expected[(2, "insert", *row.values())] += 1
    assert not _cdc_actions(person, 2)
    person.assert_changes(2, readers=(reader,))
    person.assert_changes(0, readers=(reader,))


def test_a_run_failing_while_writing_changes_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_module, "_BATCH_ROWS", 1)  # the change data file is open
    person = _Table(tmp_path, PERSON, deletion_vectors=True)
    person.run(lambda store: store.put(PERSON, _people(10)))
    before = sorted(path for path in person.path.rglob("*") if path.is_file())
    reads = 0
    changed_rows = person.store.changed_rows

    def failing_second_read(table: CanonicalTable, since: int) -> list[pa.RecordBatch]:
        nonlocal reads
        reads += 1
        if reads == 2:
            raise OSError("the store went away")
        return changed_rows(table, since)

    person.store.changed_rows = failing_second_read  # type: ignore[method-assign]

    with pytest.raises(ExportError, match="OSError"):
        person.run(lambda store: store.put(PERSON, _people(2, name="Changed")))

    assert reads == 2
    after = sorted(path for path in person.path.rglob("*") if path.is_file())
    assert after == before, [str(path) for path in after if path not in before]


@BOTH_MODES
def test_without_the_change_feed_no_change_data_is_written_and_no_old_file_read(
    tmp_path: Path, deletion_vectors: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow that chose ``changeDataFeed: false``: the table says so, commits carry no
    ``cdc`` action, and with deletion vectors the old data files are not even read."""
    store = FakeChanges()
    store.put(PERSON, _people(300))

    def run(number: int) -> None:
        write_delta(
            LocalDestination(tmp_path),
            run_id=f"run-{number}",
            run_time=FIRST_RUN + timedelta(minutes=number),
            tables=[PERSON],
            source=store,
            deletion_vectors=deletion_vectors,
            change_data_feed=False,
        )

    run(0)
    store.put(PERSON, [{**row, "GivenName": "Changed"} for row in _people(300)[::30]])
    store.delete(PERSON, _ids(range(5, 300, 50)))
    reads = []
    real_read = delta_module._read_data_file
    monkeypatch.setattr(
        delta_module, "_read_data_file", lambda *args: reads.append(args) or real_read(*args)
    )
    run(1)

    commit = tmp_path / "Person" / "_delta_log" / f"{1:020d}.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines()]
    assert not any("cdc" in action for action in actions)
    assert not (tmp_path / "Person" / CHANGE_DATA_FOLDER).exists()
    state = read_state(LocalDestination(tmp_path), "Person")
    assert state is not None
    assert state.metadata["configuration"]["delta.enableChangeDataFeed"] == "false"
    assert bool(reads) is not deletion_vectors  # only a rewrite reads the old file
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
