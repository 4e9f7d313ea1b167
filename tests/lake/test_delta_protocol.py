"""The delta writer keeps the Delta protocol on tables others change too.

Statistics of a file re-added with a deletion vector are wide bounds (``tightBounds:
false``); a table keeps the configuration keys, features and protocol versions others gave
it; an append-only table or one with CHECK constraints refuses the commits it forbids, and a
table with features the writer does not implement (column mapping in use, unknown ones) is
refused, its log untouched; a commit race lost to another writer is retried (the same
commit, or one built again when the winner touched what it relies on); a retried request
whose first attempt committed is recognised; each flow has its own app transaction; the
files of failed and killed attempts are deleted when provably the writer's own.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable, write_deltalake

from industrydata.canonical.tables import CanonicalTable, table_by_name
from industrydata.errors import ExportError
from industrydata.lake import LocalDestination, SnapshotResult, write_delta
from industrydata.lake import _delta_log as log
from industrydata.lake import delta as delta_module
from industrydata.lake.delta import (
    APP_ID,
    COMMIT_ATTEMPTS,
    PENDING_FOLDER,
    RUN_ID_KEY,
    delta_schema,
    transaction_version,
)

from .delta_support import FakeChanges, read_delta

FIRST_RUN = datetime(2026, 11, 27, 6, 0, 0)
PERSON = table_by_name("Person")
MEMBERSHIP = table_by_name("AadGroupMembership")
FLOW = "0b6f2f4e-5c1a-4d7e-9a43-2d1f0c6b8e11"


def _write(
    destination: LocalDestination,
    store: FakeChanges,
    tables: list[CanonicalTable],
    *,
    minutes: int = 0,
    deletion_vectors: bool = True,
    flow_id: str | None = FLOW,
) -> SnapshotResult:
    return write_delta(
        destination,
        run_id=f"run-{minutes}",
        run_time=FIRST_RUN + timedelta(minutes=minutes),
        tables=tables,
        source=store,
        deletion_vectors=deletion_vectors,
        flow_id=flow_id,
    )


def _people(count: int, *, name: str = "Ada") -> list[dict]:
    return [{"Id": f"p{index:04d}", "GivenName": name} for index in range(count)]


def _actions(root: Path, table: CanonicalTable, version: int) -> list[dict]:
    entry = root / table.name / "_delta_log" / f"{version:020d}.json"
    return [json.loads(line) for line in entry.read_text().splitlines()]


def _files(root: Path, table: CanonicalTable) -> set[str]:
    """Every object of the table folder, relative to it."""
    folder = root / table.name
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def _stray_files(root: Path, table: CanonicalTable) -> set[str]:
    """Data and deletion vector files, and pending records, that no commit names."""
    named = log.named_files(LocalDestination(root), table.name)
    return {
        path
        for path in _files(root, table)
        if not path.startswith(("_delta_log/", "_industrydata/row-numbers/")) and path not in named
    }


def _commit_as_another_writer(root: Path, table: CanonicalTable, actions: list[dict]) -> int:
    """Commit ``actions`` as the table's next version, as another writer would."""
    state = log.read_state(LocalDestination(root), table.name)
    version = 0 if state is None else state.version + 1
    entry = [{"commitInfo": {"timestamp": log.now_ms(), "operation": "OTHER"}}, *actions]
    assert log.commit(LocalDestination(root), table.name, version, entry)
    return version


class _RacedDestination(LocalDestination):
    """A local destination where another writer commits just before this one, at the
    version this one is about to create, ``times`` times."""

    def __init__(self, root: Path, winner: list[dict], *, times: int = 1) -> None:
        super().__init__(root)
        self.winner = winner
        self.times = times

    def _create_new(self, path: str, data: bytes) -> bool:
        if self.times and "/_delta_log/" in path:
            self.times -= 1
            other = [{"commitInfo": {"timestamp": log.now_ms(), "operation": "OTHER"}}]
            super()._create_new(path, _entry(other + self.winner))
        return super()._create_new(path, data)


def _protocol(table: DeltaTable) -> tuple:
    protocol = table.protocol()
    return (
        protocol.min_reader_version,
        protocol.min_writer_version,
        sorted(protocol.reader_features or []),
        sorted(protocol.writer_features or []),
    )


def _entry(actions: list[dict]) -> bytes:
    return "".join(json.dumps(action) + "\n" for action in actions).encode()


# 1. tightBounds


def test_file_written_whole_has_tight_bounds_and_one_re_added_with_a_deletion_vector_wide(
    tmp_path: Path,
) -> None:
    destination = LocalDestination(tmp_path)
    store = FakeChanges()
    store.put(PERSON, _people(10))
    _write(destination, store, [PERSON])
    (first,) = [action["add"] for action in _actions(tmp_path, PERSON, 0) if "add" in action]
    store.put(PERSON, [{"Id": "p0009", "GivenName": "Zed"}])

    _write(destination, store, [PERSON], minutes=1)

    before = json.loads(first["stats"])
    assert before["tightBounds"] is True
    added = [action["add"] for action in _actions(tmp_path, PERSON, 1) if "add" in action]
    (re_added,) = [add for add in added if add["path"] == first["path"]]
    (new,) = [add for add in added if add["path"] != first["path"]]
    after = json.loads(re_added["stats"])
    assert re_added["deletionVector"]["cardinality"] == 1
    assert after == {**before, "tightBounds": False}  # numRecords: still the physical rows
    assert after["maxValues"]["Id"] == "p0009"  # a bound no live row reaches any more
    assert json.loads(new["stats"])["tightBounds"] is True
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))


# 2. Tables someone else changed


def test_configuration_keys_and_features_of_others_are_kept(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(destination, store, [PERSON])
    other = DeltaTable(str(tmp_path / "Person"))
    other.alter.set_table_properties(
        {"delta.logRetentionDuration": "interval 60 days", "delta.checkpointInterval": "20"}
    )
    kept = DeltaTable(str(tmp_path / "Person"))
    configuration = dict(kept.metadata().configuration)
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    _write(destination, store, [PERSON], minutes=1)

    table = DeltaTable(str(tmp_path / "Person"))
    assert table.version() == 2
    assert dict(table.metadata().configuration) == configuration
    assert configuration["delta.logRetentionDuration"] == "interval 60 days"
    assert _protocol(table) == _protocol(kept)  # with variantType, added by delta-rs
    assert table.metadata().id == kept.metadata().id
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))


def test_append_only_table_refuses_an_update_and_commits_nothing(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)
    write_deltalake(
        str(tmp_path / "Person"),
        delta_schema(PERSON).empty_table(),
        configuration={"delta.appendOnly": "true"},
    )
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(destination, store, [PERSON])  # inserts only: allowed
    store.put(PERSON, [{"Id": "p0100", "GivenName": "New"}])
    _write(destination, store, [PERSON], minutes=1)  # likewise
    table = DeltaTable(str(tmp_path / "Person"))
    assert table.version() == 2
    assert table.metadata().configuration["delta.appendOnly"] == "true"
    assert "appendOnly" in (table.protocol().writer_features or [])
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    files = _files(tmp_path, PERSON)
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    with pytest.raises(ExportError) as raised:
        _write(destination, store, [PERSON], minutes=2)

    assert raised.value.target == "Person"
    assert "append-only" in raised.value.message
    assert _files(tmp_path, PERSON) == files  # nothing committed, nothing left behind


def test_check_constraint_is_kept_and_a_run_adding_rows_is_refused(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)
    store = FakeChanges()
    store.put(PERSON, _people(3))
    store.put(MEMBERSHIP, [{"GroupObjectId": "g1", "UserObjectId": "u1", "Role": "member"}])
    _write(destination, store, [PERSON, MEMBERSHIP])
    DeltaTable(str(tmp_path / "Person")).alter.add_constraint({"named": "GivenName IS NOT NULL"})
    store.delete(PERSON, [("p0002",)])

    _write(destination, store, [PERSON], minutes=1)  # deletes only: allowed

    table = DeltaTable(str(tmp_path / "Person"))
    assert table.metadata().configuration["delta.constraints.named"] == '"GivenName" IS NOT NULL'
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    files = _files(tmp_path, PERSON)
    store.put(PERSON, [{"Id": "p0001", "GivenName": None}])
    store.put(MEMBERSHIP, [{"GroupObjectId": "g1", "UserObjectId": "u2", "Role": "member"}])

    with pytest.raises(ExportError) as raised:
        _write(destination, store, [PERSON, MEMBERSHIP], minutes=2)

    assert raised.value.target == "Person"
    assert "CHECK constraint named" in raised.value.message
    assert _files(tmp_path, PERSON) == files


def test_column_mapping_table_is_refused_and_its_log_untouched(tmp_path: Path) -> None:
    destination = LocalDestination(tmp_path)
    write_deltalake(
        str(tmp_path / "Person"),
        delta_schema(PERSON).empty_table(),
        configuration={"delta.columnMapping.mode": "name"},
    )
    protocol = DeltaTable(str(tmp_path / "Person")).protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (2, 5)
    files = _files(tmp_path, PERSON)
    store = FakeChanges()
    store.put(PERSON, _people(2))

    with pytest.raises(ExportError) as raised:
        _write(destination, store, [PERSON])

    assert raised.value.target == "Person"
    assert "columnMapping" in raised.value.message
    assert _files(tmp_path, PERSON) == files


@pytest.mark.parametrize(
    "protocol",
    [
        {"minReaderVersion": 1, "minWriterVersion": 7, "writerFeatures": ["rowTracking"]},
        {
            "minReaderVersion": 3,
            "minWriterVersion": 7,
            "readerFeatures": ["v2Checkpoint"],
            "writerFeatures": ["v2Checkpoint"],
        },
        {"minReaderVersion": 4, "minWriterVersion": 8},
    ],
    ids=["writer feature", "reader feature", "newer versions"],
)
def test_table_with_a_feature_the_writer_does_not_implement_is_refused(
    tmp_path: Path, protocol: dict
) -> None:
    destination = LocalDestination(tmp_path)
    store = FakeChanges()
    store.put(PERSON, _people(2))
    _write(destination, store, [PERSON])
    _commit_as_another_writer(tmp_path, PERSON, [{"protocol": protocol}])
    files = _files(tmp_path, PERSON)
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    with pytest.raises(ExportError) as raised:
        _write(destination, store, [PERSON], minutes=1)

    assert "cannot honour" in raised.value.message
    assert _files(tmp_path, PERSON) == files


def test_generated_column_in_use_is_refused_and_unused_legacy_features_are_not(
    tmp_path: Path,
) -> None:
    destination = LocalDestination(tmp_path)
    store = FakeChanges()
    store.put(PERSON, _people(2))
    _write(destination, store, [PERSON], deletion_vectors=False)  # reader 1 / writer 4
    state = log.read_state(destination, "Person")
    assert state is not None
    schema = json.loads(state.metadata["schemaString"])
    schema["fields"][3]["metadata"] = {"delta.generationExpression": "upper(Surname)"}
    metadata = {**state.metadata, "schemaString": json.dumps(schema)}
    _commit_as_another_writer(tmp_path, PERSON, [{"metaData": metadata}])
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    with pytest.raises(ExportError) as raised:
        _write(destination, store, [PERSON], minutes=1, deletion_vectors=False)

    assert "generatedColumns" in raised.value.message


@pytest.mark.parametrize("deletion_vectors", [True, False])
@pytest.mark.parametrize(
    "current",
    [
        {},
        {"minReaderVersion": 1, "minWriterVersion": 2},
        {"minReaderVersion": 1, "minWriterVersion": 4},
        {"minReaderVersion": 2, "minWriterVersion": 5},
        {"minReaderVersion": 1, "minWriterVersion": 6},
        {"minReaderVersion": 1, "minWriterVersion": 7, "writerFeatures": ["appendOnly"]},
        {"minReaderVersion": 2, "minWriterVersion": 7, "writerFeatures": ["columnMapping"]},
        {
            "minReaderVersion": 3,
            "minWriterVersion": 7,
            "readerFeatures": ["deletionVectors", "vacuumProtocolCheck"],
            "writerFeatures": ["deletionVectors", "vacuumProtocolCheck", "checkConstraints"],
        },
    ],
)
def test_protocol_never_loses_a_feature_nor_a_version(
    current: dict, deletion_vectors: bool
) -> None:
    protocol = log.protocol_action(deletion_vectors=deletion_vectors, current=current)

    assert protocol["minReaderVersion"] >= current.get("minReaderVersion", 1)
    assert protocol["minWriterVersion"] >= current.get("minWriterVersion", 1)
    assert log.reader_features(protocol) >= log.reader_features(current)
    assert log.writer_features(protocol) >= log.writer_features(current) | {"changeDataFeed"}
    if deletion_vectors:
        assert "deletionVectors" in log.reader_features(protocol)
    if protocol["minReaderVersion"] == 3:  # the protocol's own rules for table features
        assert protocol["minWriterVersion"] == 7
        assert set(protocol["readerFeatures"]) <= set(protocol["writerFeatures"])
    assert ("readerFeatures" in protocol) == (protocol["minReaderVersion"] == 3)
    assert ("writerFeatures" in protocol) == (protocol["minWriterVersion"] == 7)


def test_legacy_table_given_deletion_vectors_lists_the_features_its_version_implied() -> None:
    protocol = log.protocol_action(
        deletion_vectors=True, current={"minReaderVersion": 1, "minWriterVersion": 4}
    )

    assert protocol == {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": ["deletionVectors"],
        "writerFeatures": [
            "appendOnly",
            "changeDataFeed",
            "checkConstraints",
            "deletionVectors",
            "generatedColumns",
            "invariants",
        ],
    }


# 3. Conflicts


def test_lost_race_is_retried_at_the_next_version_and_later_tables_are_written(
    tmp_path: Path,
) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(3))
    store.put(MEMBERSHIP, [{"GroupObjectId": "g1", "UserObjectId": "u1", "Role": "member"}])
    _write(LocalDestination(tmp_path), store, [PERSON, MEMBERSHIP])
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])
    store.put(MEMBERSHIP, [{"GroupObjectId": "g1", "UserObjectId": "u2", "Role": "member"}])
    # A streaming job of the consumer's records its progress in between: no conflict.
    raced = _RacedDestination(tmp_path, [{"txn": {"appId": "consumer-stream", "version": 7}}])

    result = _write(raced, store, [PERSON, MEMBERSHIP], minutes=1)

    assert [table.rows_read for table in result.tables] == [1, 1]
    assert _actions(tmp_path, PERSON, 1)[0]["commitInfo"]["operation"] == "OTHER"
    ours = _actions(tmp_path, PERSON, 2)
    assert ours[0]["commitInfo"][RUN_ID_KEY] == "run-1"
    assert ours[0]["commitInfo"]["operation"] == "MERGE"
    for table in (PERSON, MEMBERSHIP):
        assert read_delta(str(tmp_path / table.name), table).equals(store.current(table))
        assert _stray_files(tmp_path, table) == set()
    assert DeltaTable(str(tmp_path / "Person")).transaction_version("consumer-stream") == 7


def test_winner_that_rewrote_a_file_this_run_changes_makes_it_build_its_commit_again(
    tmp_path: Path,
) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(10))
    _write(LocalDestination(tmp_path), store, [PERSON])
    state = log.read_state(LocalDestination(tmp_path), "Person")
    assert state is not None
    ((path, add),) = state.files.items()
    shutil.copy(tmp_path / "Person" / path, tmp_path / "Person" / "part-00000-compacted.parquet")
    compacted = {**add, "path": "part-00000-compacted.parquet", "dataChange": False}
    removed = {"path": path, "deletionTimestamp": log.now_ms(), "dataChange": False}
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])
    raced = _RacedDestination(tmp_path, [{"remove": removed}, {"add": compacted}])

    result = _write(raced, store, [PERSON], minutes=1)

    ours = _actions(tmp_path, PERSON, 2)
    assert ours[0]["commitInfo"]["operation"] == "WRITE"  # the compacted file has no locator
    assert result.tables[0].rows_read == 10
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    assert _stray_files(tmp_path, PERSON) == set()  # the first attempt's files are gone


def test_winner_that_is_a_newer_run_of_the_flow_makes_the_run_leave_the_table(
    tmp_path: Path,
) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(LocalDestination(tmp_path), store, [PERSON])
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])
    newer = transaction_version(FIRST_RUN + timedelta(minutes=5))
    raced = _RacedDestination(tmp_path, [{"txn": {"appId": f"{APP_ID}.{FLOW}", "version": newer}}])

    result = _write(raced, store, [PERSON], minutes=1)

    assert (result.snapshot_id, result.tables[0].rows_written) == ("1", 0)
    assert DeltaTable(str(tmp_path / "Person")).version() == 1
    assert _stray_files(tmp_path, PERSON) == set()


def test_race_lost_every_time_is_an_export_error_that_leaves_nothing(tmp_path: Path) -> None:
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(LocalDestination(tmp_path), store, [PERSON])
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])
    raced = _RacedDestination(
        tmp_path, [{"txn": {"appId": "consumer-stream", "version": 1}}], times=COMMIT_ATTEMPTS
    )

    with pytest.raises(ExportError) as raised:
        _write(raced, store, [PERSON], minutes=1)

    assert raised.value.target == "Person"
    assert f"{COMMIT_ATTEMPTS} times" in raised.value.message
    assert DeltaTable(str(tmp_path / "Person")).version() == COMMIT_ATTEMPTS
    assert _stray_files(tmp_path, PERSON) == set()


def test_retried_request_whose_first_attempt_committed_is_this_runs_commit(
    tmp_path: Path,
) -> None:
    class _LostResponse(LocalDestination):
        """Creates the commit, then answers as a retried request does: it exists."""

        def _create_new(self, path: str, data: bytes) -> bool:
            super()._create_new(path, data)
            return False

    store = FakeChanges()
    store.put(PERSON, _people(3))

    result = _write(_LostResponse(tmp_path), store, [PERSON, MEMBERSHIP])

    assert result.snapshot_id == "0"
    assert DeltaTable(str(tmp_path / "Person")).version() == 0
    assert _actions(tmp_path, PERSON, 0)[0]["commitInfo"][RUN_ID_KEY] == "run-0"
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    assert DeltaTable(str(tmp_path / "AadGroupMembership")).version() == 0


def test_each_flow_has_its_own_app_transaction_and_the_shared_one_is_still_honoured(
    tmp_path: Path,
) -> None:
    destination = LocalDestination(tmp_path)
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(destination, store, [PERSON], flow_id=None)  # a table of the shared app id
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    again = _write(destination, store, [PERSON], flow_id=FLOW)  # the same run, retried
    later = _write(destination, store, [PERSON], minutes=1, flow_id=FLOW)

    assert (again.snapshot_id, later.snapshot_id) == ("0", "1")
    actions = _actions(tmp_path, PERSON, 1)
    app_ids = {action["txn"]["appId"] for action in actions if "txn" in action}
    assert f"{APP_ID}.{FLOW}" in app_ids and APP_ID not in app_ids
    table = DeltaTable(str(tmp_path / "Person"))
    assert table.transaction_version(f"{APP_ID}.{FLOW}") == transaction_version(
        FIRST_RUN + timedelta(minutes=1)
    )
    assert table.transaction_version(APP_ID) == transaction_version(FIRST_RUN)


# 4. Files of failed and killed runs


class _Killed(BaseException):
    """The process ends while the commit request is out."""


def test_files_of_a_killed_attempt_are_deleted_by_a_later_run_of_the_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = LocalDestination(tmp_path)
    store = FakeChanges()
    store.put(PERSON, _people(10))
    _write(destination, store, [PERSON])
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    def killed(*args: object, **kwargs: object) -> bool:
        raise _Killed

    with monkeypatch.context() as patched:
        patched.setattr(delta_module.log, "commit", killed)
        with pytest.raises(_Killed):
            _write(destination, store, [PERSON], minutes=1)
    left = _stray_files(tmp_path, PERSON)
    assert any(path.startswith(PENDING_FOLDER) for path in left)
    assert any(path.endswith(".parquet") for path in left)
    assert any(path.startswith("deletion_vector_") for path in left)

    _write(destination, store, [PERSON], minutes=2)

    assert _stray_files(tmp_path, PERSON) == set()
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))


def test_killed_attempt_that_committed_keeps_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = LocalDestination(tmp_path)
    store = FakeChanges()
    store.put(PERSON, _people(10))
    _write(destination, store, [PERSON])
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])
    with monkeypatch.context() as patched:  # killed between the commit and the record's removal
        patched.setattr(delta_module._AttemptFiles, "committed", lambda self: None)
        _write(destination, store, [PERSON], minutes=1)
    assert any(path.startswith(PENDING_FOLDER) for path in _files(tmp_path, PERSON))
    store.put(PERSON, [{"Id": "p0002", "GivenName": "Changed"}])

    _write(destination, store, [PERSON], minutes=2)

    assert not any(path.startswith(PENDING_FOLDER) for path in _files(tmp_path, PERSON))
    assert read_delta(str(tmp_path / "Person"), PERSON).equals(store.current(PERSON))
    assert _stray_files(tmp_path, PERSON) == set()


def test_record_of_another_flow_is_kept_until_the_log_retention_has_passed(
    tmp_path: Path,
) -> None:
    destination = LocalDestination(tmp_path)
    store = FakeChanges()
    store.put(PERSON, _people(3))
    _write(destination, store, [PERSON])
    (tmp_path / "Person" / "part-00000-other-c000.zstd.parquet").write_bytes(b"half a file")
    record = {
        "runId": "other-run",
        "appId": f"{APP_ID}.another-flow",
        "runVersion": transaction_version(FIRST_RUN + timedelta(days=1)),
        "started": log.now_ms(),
        "files": ["part-00000-other-c000.zstd.parquet"],
    }
    record_path = tmp_path / "Person" / PENDING_FOLDER / "other.json"
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record))
    store.put(PERSON, [{"Id": "p0001", "GivenName": "Changed"}])

    _write(destination, store, [PERSON], minutes=1)
    assert record_path.exists()
    record["started"] -= 31 * 24 * 3600 * 1000  # older than the 30 days of log retention
    record_path.write_text(json.dumps(record))
    store.put(PERSON, [{"Id": "p0002", "GivenName": "Changed"}])
    _write(destination, store, [PERSON], minutes=2)

    assert not record_path.exists()
    assert _stray_files(tmp_path, PERSON) == set()
