"""The delta writer keeps one Delta table per canonical table equal to the store's rows.

The first run creates every table with typed columns (empty ones too); each later run makes
exactly one commit per table carrying the run id, writing only the rows changed since the
version the table reflects and deleting old copies with deletion vectors (or rewriting a
file when most of it is gone, or when deletion vectors are off); a table it cannot continue
is replaced whole; a retried or stale run commits nothing. Tables are read back with
deltalake's DataFusion engine, which applies deletion vectors.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from industrydata.canonical.tables import CANONICAL_TABLES, CanonicalTable, table_by_name
from industrydata.errors import ExportError, InvalidDestination
from industrydata.lake import LocalDestination, MemoryDestination, SnapshotResult, write_delta
from industrydata.lake import delta as delta_module
from industrydata.lake._delta_log import CHECKPOINT_INTERVAL, read_state
from industrydata.lake.delta import (
    APP_ID,
    CHANGES_APP_PREFIX,
    LOCATOR_FOLDER,
    RUN_ID_KEY,
    transaction_version,
)

from .delta_support import FakeChanges, read_delta

UTC = timezone.utc
FIRST_RUN = datetime(2026, 11, 27, 6, 0, 0)
SEEN = datetime(2021, 9, 5, 6, 16, 22, 5000, UTC)
PERSON = table_by_name("Person")
MEMBERSHIP = table_by_name("AadGroupMembership")


def _write(
    root: Path,
    store: FakeChanges,
    tables: list[CanonicalTable],
    *,
    minutes: int = 0,
    run_id: str | None = None,
    deletion_vectors: bool = True,
) -> SnapshotResult:
    return write_delta(
        LocalDestination(root),
        run_id=run_id or f"run-{minutes}",
        run_time=FIRST_RUN + timedelta(minutes=minutes),
        tables=tables,
        source=store,
        deletion_vectors=deletion_vectors,
    )


def _people(count: int, *, name: str = "Ada", start: int = 0) -> list[dict]:
    return [{"Id": f"p{index:04d}", "GivenName": name} for index in range(start, start + count)]


def _log(root: Path, table: CanonicalTable, version: int) -> list[dict]:
    entry = root / table.name / "_delta_log" / f"{version:020d}.json"
    return [json.loads(line) for line in entry.read_text().splitlines()]


def _history(root: Path, table: CanonicalTable) -> list[dict]:
    return sorted(DeltaTable(str(root / table.name)).history(), key=lambda c: c["version"])


def test_first_run_creates_every_table_typed_with_deletion_vectors(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, [{"Id": "p1", "GivenName": "Ada", "LastSeenDateTime": SEEN}])

    result = _write(tmp_path, store, list(CANONICAL_TABLES))

    assert result.snapshot_id == "0"
    for table in CANONICAL_TABLES:
        delta = DeltaTable(str(tmp_path / table.name))
        assert delta.version() == 0
        assert read_delta(str(tmp_path / table.name), table).equals(store.current(table))
        schema = pa.schema(delta.schema().to_arrow())
        assert schema.names == list(table.column_names), table.name
        protocol = delta.protocol()
        assert protocol.reader_features == ["deletionVectors"]
        assert "changeDataFeed" in protocol.writer_features
    (commit,) = _history(tmp_path, PERSON)
    assert commit[RUN_ID_KEY] == "run-0"
    delta = DeltaTable(str(tmp_path / "Person"))
    assert delta.transaction_version(APP_ID) == transaction_version(FIRST_RUN)
    assert delta.transaction_version(CHANGES_APP_PREFIX + store.epoch) == store.version
    assert read_delta(str(tmp_path / "Person"), PERSON)["LastSeenDateTime"][
        0
    ].as_py() == SEEN.replace(microsecond=5000)


def test_later_run_writes_only_changes_and_deletes_old_rows_with_deletion_vectors(
    tmp_path: Path,
) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(10))
    _write(tmp_path, store, [PERSON])
    store.put(PERSON, [{"Id": "p0002", "GivenName": None}, {"Id": "p0100", "GivenName": "Dee"}])
    store.delete(PERSON, [("p0003",)])

    result = _write(tmp_path, store, [PERSON], minutes=1)

    assert result.snapshot_id == "1"
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    (person,) = result.tables
    assert (person.rows_read, person.rows_written) == (2, 3)
    # The changed rows' data file, the deletion vectors and the change data file.
    assert person.files_written == 3
    actions = _log(tmp_path, PERSON, 1)
    added = [action["add"] for action in actions if "add" in action]
    removed = [action["remove"] for action in actions if "remove" in action]
    assert [add["deletionVector"]["cardinality"] for add in added if "deletionVector" in add] == [2]
    assert (
        json.loads(next(add for add in added if "deletionVector" not in add)["stats"])["numRecords"]
        == 2
    )
    assert len(removed) == 1 and "deletionVector" not in removed[0]
    assert [commit[RUN_ID_KEY] for commit in _history(tmp_path, PERSON)] == ["run-0", "run-1"]
    changes = pa.table(DeltaTable(str(tmp_path / "Person")).load_cdf(starting_version=1))
    assert sorted(zip(changes["Id"].to_pylist(), changes["_change_type"].to_pylist())) == [
        ("p0002", "update_postimage"),
        ("p0002", "update_preimage"),
        ("p0003", "delete"),
        ("p0100", "insert"),
    ]


def test_deletion_vectors_accumulate_over_runs(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(20))
    _write(tmp_path, store, [PERSON])
    for run in range(1, 4):
        changed = [f"p{run:04d}", "p0000"]
        store.put(PERSON, [{"Id": id_, "GivenName": f"run {run}"} for id_ in changed])
        _write(tmp_path, store, [PERSON], minutes=run)

    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    state = read_state(LocalDestination(tmp_path), "Person")
    assert state is not None
    cardinalities = sorted(
        add["deletionVector"]["cardinality"]
        for add in state.files.values()
        if "deletionVector" in add
    )
    # The first file lost p0000 to p0003; the first two runs' files each lost their p0000.
    assert cardinalities == [1, 1, 4]


def test_file_mostly_deleted_is_rewritten_without_it(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(4))
    _write(tmp_path, store, [PERSON])
    store.put(PERSON, [{"Id": f"p{index:04d}", "GivenName": "Changed"} for index in range(3)])

    _write(tmp_path, store, [PERSON], minutes=1)

    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    state = read_state(LocalDestination(tmp_path), "Person")
    assert state is not None
    assert len(state.files) == 1
    assert not any("deletionVector" in add for add in state.files.values())


def test_file_wholly_replaced_is_removed(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(4))
    _write(tmp_path, store, [PERSON])
    store.put(PERSON, _people(4, name="Changed"))

    _write(tmp_path, store, [PERSON], minutes=1)

    actions = _log(tmp_path, PERSON, 1)
    (added,) = [action["add"] for action in actions if "add" in action]
    assert json.loads(added["stats"])["numRecords"] == 4
    assert sum("remove" in action for action in actions) == 1
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))


def test_without_deletion_vectors_touched_files_are_rewritten(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(10))
    _write(tmp_path, store, [PERSON], deletion_vectors=False)
    store.put(PERSON, [{"Id": "p0005", "GivenName": "Changed"}])
    store.delete(PERSON, [("p0006",)])

    _write(tmp_path, store, [PERSON], minutes=1, deletion_vectors=False)

    delta = DeltaTable(str(tmp_path / "Person"))
    assert delta.protocol().min_reader_version == 1
    assert delta.to_pyarrow_table().num_rows == 9  # a reader without deletion vectors
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    state = read_state(LocalDestination(tmp_path), "Person")
    assert state is not None and not any("deletionVector" in add for add in state.files.values())


def test_without_deletion_vectors_only_files_holding_changed_rows_are_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_module, "MAX_FILE_ROWS", 4)
    monkeypatch.setattr(delta_module, "_BATCH_ROWS", 3)
    store = FakeChanges()
    store.put(PERSON, _people(12))
    _write(tmp_path, store, [PERSON], deletion_vectors=False)
    files = {add["add"]["path"] for add in _log(tmp_path, PERSON, 0) if "add" in add}
    store.put(PERSON, [{"Id": "p0005", "GivenName": "Changed"}])
    store.delete(PERSON, [("p0006",)])

    _write(tmp_path, store, [PERSON], minutes=1, deletion_vectors=False)

    log = _log(tmp_path, PERSON, 1)
    removed = [action["remove"]["path"] for action in log if "remove" in action]
    assert len(removed) == 1 and removed[0] in files  # the second file of three, p0004-p0007
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    # The rewritten rows kept their row numbers: a later change finds the one it changes.
    store.put(PERSON, [{"Id": "p0007", "GivenName": "Again"}])
    _write(tmp_path, store, [PERSON], minutes=2, deletion_vectors=False)
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    assert DeltaTable(str(tmp_path / "Person")).to_pyarrow_table().num_rows == 11


def test_unchanged_table_gets_a_commit_without_data(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(1))
    _write(tmp_path, store, [PERSON])

    result = _write(tmp_path, store, [PERSON], minutes=1)

    (person,) = result.tables
    assert (person.rows_read, person.rows_written, person.files_written) == (0, 0, 0)
    assert not [
        action for action in _log(tmp_path, PERSON, 1) if "add" in action or "remove" in action
    ]
    delta = DeltaTable(str(tmp_path / "Person"))
    assert delta.transaction_version(APP_ID) == transaction_version(
        FIRST_RUN + timedelta(minutes=1)
    )


@pytest.mark.parametrize("minutes", [0, -1])
def test_retried_or_stale_run_commits_nothing(tmp_path: Path, minutes: int) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(1))
    _write(tmp_path, store, [PERSON])
    before = store.current(PERSON)
    store.put(PERSON, _people(1, name="Changed"))

    result = _write(tmp_path, store, [PERSON], minutes=minutes, run_id="run-again")

    assert result.snapshot_id == "0"
    assert [(entry.rows_read, entry.rows_written) for entry in result.tables] == [(0, 0)]
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(before)


def test_another_store_replaces_the_table_whole(tmp_path: Path) -> None:
    first = FakeChanges()
    first.put(PERSON, _people(3))
    _write(tmp_path, first, [PERSON])
    second = FakeChanges()
    second.put(PERSON, _people(2, start=5))

    result = _write(tmp_path, second, [PERSON], minutes=1)

    assert read_delta(str(tmp_path / "Person"), PERSON).equals(second.current(PERSON))
    assert result.tables[0].rows_read == 2
    actions = _log(tmp_path, PERSON, 1)
    assert sum("remove" in action for action in actions) == 1


def test_table_rewritten_by_another_writer_is_replaced_whole(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(tmp_path, store, [PERSON])
    # A consumer's OPTIMIZE-like rewrite: a file the writer has no locator for.
    state = read_state(LocalDestination(tmp_path), "Person")
    assert state is not None
    (old,) = state.files
    (tmp_path / "Person" / LOCATOR_FOLDER / old).unlink()
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    result = _write(tmp_path, store, [PERSON], minutes=1)

    assert result.tables[0].rows_read == 3
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))


def test_stale_locators_of_killed_runs_are_deleted(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(tmp_path, store, [PERSON])
    stray = tmp_path / "Person" / LOCATOR_FOLDER / "part-00000-killed-c000.zstd.parquet"
    stray.write_bytes(b"left by a killed run")
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    _write(tmp_path, store, [PERSON], minutes=1)

    assert not stray.exists()
    state = read_state(LocalDestination(tmp_path), "Person")
    assert state is not None
    locators = {path.name for path in (tmp_path / "Person" / LOCATOR_FOLDER).iterdir()}
    assert locators == set(state.files)


def test_files_roll_over_and_changes_find_rows_in_any_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delta_module, "MAX_FILE_ROWS", 4)
    store = FakeChanges()
    store.put(PERSON, _people(10))

    first = _write(tmp_path, store, [PERSON])
    store.put(PERSON, [{"Id": "p0000", "GivenName": "A"}, {"Id": "p0009", "GivenName": "B"}])
    store.delete(PERSON, [("p0005",)])
    _write(tmp_path, store, [PERSON], minutes=1)

    assert first.tables[0].files_written == 3
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))


def test_reused_row_number_of_a_removed_row_is_handled(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(tmp_path, store, [PERSON])
    store.delete(PERSON, [("p0002",)])
    store._next_number -= 1  # the next insert takes the removed row's number again
    store.put(PERSON, [{"Id": "p0099", "GivenName": "New"}])

    _write(tmp_path, store, [PERSON], minutes=1)

    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))


def test_checkpoints_keep_the_state_readable(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(30))
    _write(tmp_path, store, [PERSON])
    for run in range(1, CHECKPOINT_INTERVAL + 2):
        store.put(PERSON, [{"Id": f"p{run:04d}", "GivenName": f"run {run}"}])
        _write(tmp_path, store, [PERSON], minutes=run)

    log_folder = tmp_path / "Person" / "_delta_log"
    assert (log_folder / f"{CHECKPOINT_INTERVAL:020d}.checkpoint.parquet").exists()
    for version in range(CHECKPOINT_INTERVAL):
        (log_folder / f"{version:020d}.json").unlink()  # a consumer's log cleanup
    state = read_state(LocalDestination(tmp_path), "Person")
    assert state is not None and state.version == CHECKPOINT_INTERVAL + 1
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    store.put(PERSON, [{"Id": "p0029", "GivenName": "last"}])
    _write(tmp_path, store, [PERSON], minutes=100)
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))


def test_every_type_and_a_composite_key_round_trip(tmp_path: Path) -> None:
    refs = table_by_name("RefDefinition")
    sessions = table_by_name("SectionSession")
    store = FakeChanges()
    store.put(refs, [{"Id": "1", "SortOrder": 10}, {"Id": "2", "SortOrder": None}])
    store.put(sessions, [{"Id": "s1", "IsActiveInSession": True}, {"Id": "s2"}])
    store.put(
        MEMBERSHIP,
        [
            {"GroupObjectId": "g1", "UserObjectId": "u1", "Role": "member"},
            {"GroupObjectId": "g1", "UserObjectId": "u2", "Role": "member"},
        ],
    )
    tables = [refs, sessions, MEMBERSHIP]
    _write(tmp_path, store, tables)
    store.put(refs, [{"Id": "2", "SortOrder": 20}])
    store.put(sessions, [{"Id": "s2", "FirstSeenDateTime": SEEN}])
    store.put(MEMBERSHIP, [{"GroupObjectId": "g1", "UserObjectId": "u1", "Role": "owner"}])
    store.delete(MEMBERSHIP, [("g1", "u2")])

    _write(tmp_path, store, tables, minutes=1)

    for table in tables:
        assert read_delta(str(tmp_path / table.name), table).equals(store.current(table)), (
            table.name
        )


def test_reports_each_table_when_done(tmp_path: Path) -> None:
    done: list[str] = []

    write_delta(
        LocalDestination(tmp_path),
        run_id="run-0",
        run_time=FIRST_RUN,
        tables=[PERSON, MEMBERSHIP],
        source=FakeChanges(),
        on_table_done=lambda result: done.append(result.name),
    )

    assert done == ["Person", "AadGroupMembership"]


def test_needs_a_destination_that_holds_tables() -> None:
    with pytest.raises(InvalidDestination):
        write_delta(
            MemoryDestination(), run_id="run-0", run_time=FIRST_RUN, tables=[], source=FakeChanges()
        )


def test_table_with_other_columns_is_an_export_error(tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "Person"), pa.table({"Id": ["p1"], "Other": [1]}))
    store = FakeChanges()
    store.put(PERSON, _people(1))

    with pytest.raises(ExportError) as raised:
        _write(tmp_path, store, [PERSON])

    assert raised.value.target == "Person"
    assert str(tmp_path) not in raised.value.message


@pytest.mark.parametrize("order", ["ascending", "shuffled"])
def test_members_finds_targets_in_a_locator_of_either_order(order: str) -> None:
    numbers = np.arange(10, 1010, 10)
    if order == "shuffled":
        numbers = np.random.default_rng(7).permutation(numbers)
    targets = np.array([5, 20, 500, 1000, 5000])

    hits = delta_module._members(numbers, targets)

    assert sorted(numbers[hits].tolist()) == [20, 500, 1000]


def test_protocol_is_written_only_when_it_changes(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(tmp_path, store, [PERSON])
    # Another writer may list the same features in another order.
    first = tmp_path / "Person" / "_delta_log" / f"{0:020d}.json"
    actions = [json.loads(line) for line in first.read_text().splitlines()]
    for action in actions:
        if "protocol" in action:
            action["protocol"]["writerFeatures"].reverse()
    first.write_text("".join(json.dumps(action) + "\n" for action in actions))
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    _write(tmp_path, store, [PERSON], minutes=1)

    assert not any("protocol" in action for action in _log(tmp_path, PERSON, 1))
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
