"""The Delta log validator of ``delta_protocol`` catches each rule it claims to check.

Each case starts from a small valid log written by hand (a table of the writer's making:
its commits carry ``industrydata.runId``), breaks one rule, and expects exactly that rule
to be reported; the valid logs themselves (and one written by delta-rs) report nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from pyroaring import BitMap64

from industrydata.lake._deletion_vectors import DeletionVectorFile
from industrydata.lake.delta import RUN_ID_KEY

from .delta_protocol import delta_tables, validate_table

pytestmark = pytest.mark.invalid_delta_logs

Actions = list[dict[str, Any]]
SCHEMA = json.dumps(
    {
        "type": "struct",
        "fields": [{"name": "Id", "type": "string", "nullable": True, "metadata": {}}],
    }
)
FEATURES = {
    "minReaderVersion": 3,
    "minWriterVersion": 7,
    "readerFeatures": ["deletionVectors"],
    "writerFeatures": ["changeDataFeed", "deletionVectors"],
}
RETENTION = {"delta.logRetentionDuration": "interval 60 days"}


def _ours(operation: str = "WRITE") -> dict[str, Any]:
    return {"commitInfo": {"operation": operation, RUN_ID_KEY: "run-1"}}


def _metadata(**configuration: str) -> dict[str, Any]:
    return {
        "metaData": {
            "id": "5f0c4f47-7d8b-4d43-9a4f-0f3f1f1c0a11",
            "format": {"provider": "parquet", "options": {}},
            "schemaString": SCHEMA,
            "partitionColumns": [],
            "configuration": {"delta.enableChangeDataFeed": "true", **configuration},
        }
    }


def _data(table: Path, rows: int = 4) -> dict[str, Any]:
    """A data file of ``rows`` rows in ``table`` and its ``add`` action."""
    table.mkdir(parents=True, exist_ok=True)
    name = f"part-00000-{uuid.uuid4()}-c000.parquet"
    pq.write_table(pa.table({"Id": [f"r{index}" for index in range(rows)]}), table / name)
    stats = {"numRecords": rows, "minValues": {}, "maxValues": {}, "nullCount": {"Id": 0}}
    return {
        "path": name,
        "partitionValues": {},
        "size": (table / name).stat().st_size,
        "modificationTime": 0,
        "dataChange": True,
        "stats": json.dumps(stats),
    }


def _remove(add: dict[str, Any]) -> dict[str, Any]:
    remove = {"path": add["path"], "dataChange": True, "deletionTimestamp": 0}
    if add.get("deletionVector"):
        remove["deletionVector"] = add["deletionVector"]
    return {"remove": remove}


def _with_deletion_vector(table: Path, add: dict[str, Any], rows: list[int]) -> dict[str, Any]:
    """``add`` again with a deletion vector of ``rows`` (written to its file) and wide bounds."""
    vectors = DeletionVectorFile()
    descriptor = vectors.add(BitMap64(rows))
    (table / vectors.name).write_bytes(vectors.content)
    stats = {**json.loads(add["stats"]), "tightBounds": False}
    return {**add, "deletionVector": descriptor, "stats": json.dumps(stats)}


def _write_log(table: Path, commits: list[Actions]) -> None:
    log = table / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    for version, actions in enumerate(commits):
        entry = "".join(json.dumps(action) + "\n" for action in actions)
        (log / f"{version:020d}.json").write_text(entry)


def _valid(table: Path) -> list[Actions]:
    """Create, update one row through a deletion vector (with its change data file), and
    change a table property the way another writer would."""
    first, second = _data(table), _data(table, rows=1)
    cdc = table / "_change_data" / "cdc-00000.parquet"
    cdc.parent.mkdir()
    pq.write_table(pa.table({"Id": ["r1", "r1"], "_change_type": ["a", "b"]}), cdc)
    return [
        [_ours(), {"protocol": FEATURES}, _metadata(), {"add": first}],
        [
            _ours("MERGE"),
            _remove(first),
            {"add": _with_deletion_vector(table, first, [1])},
            {"add": second},
            {"cdc": {"path": "_change_data/cdc-00000.parquet", "size": 1, "dataChange": False}},
            {"txn": {"appId": "industrydata", "version": 2}},
        ],
        [
            {"commitInfo": {"operation": "SET TBLPROPERTIES"}},
            _metadata(**RETENTION),
        ],
        [_ours("MERGE"), {"txn": {"appId": "industrydata", "version": 3}}],
    ]


def _rules(table: Path) -> set[str]:
    return {problem.rule for problem in validate_table(table)}


def test_valid_logs_have_no_problems(tmp_path: Path) -> None:
    _write_log(tmp_path / "ours", _valid(tmp_path / "ours"))
    write_deltalake(tmp_path / "theirs", pa.table({"Id": ["a", "b"]}))
    DeltaTable(tmp_path / "theirs").delete("Id = 'a'")

    assert [path.name for path in delta_tables(tmp_path)] == ["ours", "theirs"]
    assert validate_table(tmp_path / "ours") == []
    assert validate_table(tmp_path / "theirs") == []


def _set(version: int, index: int, action: dict[str, Any]) -> Callable[[Path, list[Actions]], None]:
    def change(_table: Path, commits: list[Actions]) -> None:
        commits[version][index] = action

    return change


def _drop(version: int, kind: str) -> Callable[[Path, list[Actions]], None]:
    def change(_table: Path, commits: list[Actions]) -> None:
        commits[version] = [action for action in commits[version] if kind not in action]

    return change


def _append(version: int, action: dict[str, Any]) -> Callable[[Path, list[Actions]], None]:
    def change(_table: Path, commits: list[Actions]) -> None:
        commits[version].append(action)

    return change


def _stats(version: int, index: int, **changes: Any) -> Callable[[Path, list[Actions]], None]:
    def change(_table: Path, commits: list[Actions]) -> None:
        add = commits[version][index]["add"]
        stats = {**json.loads(add["stats"]), **changes}
        add["stats"] = json.dumps({key: value for key, value in stats.items() if value != ...})

    return change


def _delete_file(
    version: int, index: int, kind: str = "add"
) -> Callable[[Path, list[Actions]], None]:
    def change(table: Path, commits: list[Actions]) -> None:
        (table / commits[version][index][kind]["path"]).unlink()

    return change


def _delete_deletion_vectors(table: Path, _commits: list[Actions]) -> None:
    for path in table.glob("deletion_vector_*.bin"):
        path.unlink()


BREAKAGES = {
    "not an action": ("parse", "not one action", _set(3, 1, ["txn"])),  # type: ignore[arg-type]
    "unknown action": ("parse", "unknown action", _append(3, {"sidecar": {"path": "x"}})),
    "two commitInfo": ("parse", "2 commitInfo", _append(3, _ours())),
    "lowered": (
        "protocol",
        "lowered",
        _append(3, {"protocol": {"minReaderVersion": 1, "minWriterVersion": 4}}),
    ),
    "feature removed": (
        "protocol",
        "features removed: ['changeDataFeed']",
        _append(3, {"protocol": {**FEATURES, "writerFeatures": ["deletionVectors"]}}),
    ),
    "reader 3 with writer 4": (
        "protocol",
        "reader version 3 needs writer version 7",
        _append(3, {"protocol": {**FEATURES, "minWriterVersion": 4, "writerFeatures": None}}),
    ),
    "reader feature only": (
        "protocol",
        "reader features missing from the writer features",
        _append(
            3, {"protocol": {**FEATURES, "readerFeatures": ["deletionVectors", "v2Checkpoint"]}}
        ),
    ),
    "vector without the feature": (
        "deletionVectors",
        "the table lacks the feature",
        _set(0, 1, {"protocol": {"minReaderVersion": 1, "minWriterVersion": 4}}),
    ),
    "tightBounds missing": ("deletionVectors", "tightBounds", _stats(1, 2, tightBounds=...)),
    "numRecords wrong": ("deletionVectors", "numRecords 3 wrong", _stats(1, 2, numRecords=3)),
    "data file missing": ("files", "is missing", _delete_file(1, 3)),
    "vector file missing": ("files", "deletion vector file", _delete_deletion_vectors),
    "cdc file missing": ("files", "cdc file", _delete_file(1, 4, "cdc")),
    "a path live twice": ("files", "live more than once", _drop(1, "remove")),
    "configuration key dropped": (
        "metadata",
        "keys dropped: ['delta.logRetentionDuration']",
        _append(3, _metadata()),
    ),
    "configuration value changed": (
        "metadata",
        "values changed: ['delta.logRetentionDuration']",
        _append(3, _metadata(**{"delta.logRetentionDuration": "interval 1 days"})),
    ),
    "table id changed": (
        "metadata",
        "id changed",
        _append(3, {"metaData": {**_metadata(**RETENTION)["metaData"], "id": str(uuid.uuid4())}}),
    ),
    "txn lowered": (
        "txn",
        "from 2 to 1",
        _set(3, 1, {"txn": {"appId": "industrydata", "version": 1}}),
    ),
    "numRecords wrong without a vector": ("stats", "numRecords 7", _stats(1, 3, numRecords=7)),
    "update without cdc": ("cdc", "without cdc actions", _drop(1, "cdc")),
}


@pytest.mark.parametrize("rule, detail, breakage", BREAKAGES.values(), ids=BREAKAGES.keys())
def test_each_broken_rule_is_reported(
    tmp_path: Path, rule: str, detail: str, breakage: Callable[[Path, list[Actions]], None]
) -> None:
    commits = _valid(tmp_path)
    breakage(tmp_path, commits)
    _write_log(tmp_path, commits)

    problems = validate_table(tmp_path)

    assert {problem.rule for problem in problems} == {rule}
    assert any(detail in problem.detail for problem in problems), problems


def test_a_raw_line_that_is_not_json_is_reported(tmp_path: Path) -> None:
    _write_log(tmp_path, _valid(tmp_path))
    with (tmp_path / "_delta_log" / f"{3:020d}.json").open("a") as entry:
        entry.write("not json\n")

    assert _rules(tmp_path) == {"parse"}


def test_files_gone_after_their_removal_and_a_vacuum_are_fine(tmp_path: Path) -> None:
    commits = _valid(tmp_path)
    second = commits[1][3]["add"]
    commits.append([{"commitInfo": {"operation": "DELETE"}}, _remove(second)])
    commits.append([{"commitInfo": {"operation": "VACUUM END"}}])
    (tmp_path / second["path"]).unlink()
    _write_log(tmp_path, commits)

    assert _rules(tmp_path) == set()


def test_a_vacuum_does_not_excuse_a_live_file(tmp_path: Path) -> None:
    commits = _valid(tmp_path)
    (tmp_path / commits[1][3]["add"]["path"]).unlink()
    commits.append([{"commitInfo": {"operation": "VACUUM END"}}])
    _write_log(tmp_path, commits)

    assert _rules(tmp_path) == {"files"}


def test_legacy_features_may_be_left_out_only_if_never_used(tmp_path: Path) -> None:
    """Upgrading writer version 4 to table features may drop ``appendOnly`` when no version
    set ``delta.appendOnly`` (PROTOCOL.md: assume used unless provably not)."""
    legacy = {"protocol": {"minReaderVersion": 1, "minWriterVersion": 4}}
    upgraded = {"protocol": {**FEATURES, "writerFeatures": ["changeDataFeed", "deletionVectors"]}}
    unused, used = tmp_path / "unused", tmp_path / "used"
    _write_log(unused, [[_ours(), legacy, _metadata()], [_ours(), upgraded]])
    _write_log(
        used,
        [[_ours(), legacy, _metadata(**{"delta.appendOnly": "true"})], [_ours(), upgraded]],
    )

    assert _rules(unused) == set()
    assert [str(problem) for problem in validate_table(used)] == [
        "version 1: protocol: features removed: ['appendOnly']"
    ]


def test_a_full_replacement_needs_no_change_data(tmp_path: Path) -> None:
    """Readers read a ``WRITE`` replacing every live file as every old row deleted and
    every new one inserted, which is what the writer means by it."""
    commits = _valid(tmp_path)
    live = [commits[1][2]["add"], commits[1][3]["add"]]
    commits.append([_ours(), *(_remove(add) for add in live), {"add": _data(tmp_path)}])
    _write_log(tmp_path, commits)

    assert _rules(tmp_path) == set()


def test_protocol_changes_of_other_writers_are_not_judged(tmp_path: Path) -> None:
    """Tests play other writers that lower a protocol or add unknown versions, to see this
    writer refuse such tables; only the protocols this writer commits must follow the rules."""
    commits = _valid(tmp_path)
    newer = {"protocol": {"minReaderVersion": 4, "minWriterVersion": 8}}
    commits.append([{"commitInfo": {"operation": "UPGRADE"}}, newer])
    _write_log(tmp_path, commits)

    assert _rules(tmp_path) == set()


def test_checkpoint_is_checked_against_the_commits(tmp_path: Path) -> None:
    commits = _valid(tmp_path)
    _write_log(tmp_path, commits)
    DeltaTable(tmp_path).create_checkpoint()
    assert _rules(tmp_path) == set()
    commits[3].append({"add": _data(tmp_path)})  # the commit no longer matches its checkpoint

    _write_log(tmp_path, commits)

    assert _rules(tmp_path) == {"checkpoint"}


def test_log_cleaned_up_to_a_checkpoint_is_replayed_from_it(tmp_path: Path) -> None:
    _write_log(tmp_path, _valid(tmp_path))
    DeltaTable(tmp_path).create_checkpoint()
    for version in range(3):
        (tmp_path / "_delta_log" / f"{version:020d}.json").unlink()
    assert _rules(tmp_path) == set()

    (tmp_path / "_delta_log" / f"{3:020d}.checkpoint.parquet").unlink()

    assert _rules(tmp_path) == {"files"}  # commits missing and no checkpoint
