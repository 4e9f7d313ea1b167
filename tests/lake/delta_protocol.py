"""A validator of local Delta logs: the protocol rules the ``delta`` writer must keep.

``validate_table`` replays a table's log (from version 0, or from the newest checkpoint
when older commits are gone) and returns every broken rule as a ``Problem``. Rules for any
writer's commits:

* ``parse``: one JSON action per line, of a known type, at most one ``commitInfo``;
* ``deletionVectors``: a file with a deletion vector only in a table with the feature,
  ``numRecords`` accurate and ``tightBounds: false`` (its bounds may be wide; PROTOCOL.md
  "Per-file Statistics"), the vector inside its file;
* ``files``: each path live at most once; every file an ``add`` names, every deletion
  vector file and every ``cdc`` file exists, unless it left the table and a VACUUM came
  after;
* ``checkpoint``: a checkpoint holds the replayed state of its version.

And for the writer's own commits (those with ``industrydata.runId`` in ``commitInfo``;
tests play other writers that do what this writer must not):

* ``protocol``: a protocol it writes is consistent (reader 3 needs writer 7, features listed
  where the versions say, reader features also listed as writer features), never lower than
  the one before and without removing a feature (a legacy version's implied feature may be
  left out when upgrading to table features only if no replayed version used it:
  PROTOCOL.md "Table Features for New and Existing Tables");
* ``metadata``: the table id and every configuration key of the version before are kept
  (values too, except the keys the writer owns);
* ``txn``: no app id's transaction version goes down;
* ``stats``: ``numRecords`` equals the Parquet file's row count;
* ``cdc``: with ``delta.enableChangeDataFeed``, a commit that removes files and adds files
  (an update, a delete through a deletion vector, or a rewrite) carries ``cdc`` actions
  (PROTOCOL.md "Add CDC File"); except a ``WRITE``, the writer's full replacement, which
  change feed readers read as every old row deleted and every new one inserted, as they
  read any overwrite.

``delta_tables`` finds the tables under a folder; ``tests/conftest.py`` runs the validator
on every table a test leaves in its ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq

from industrydata.lake.delta import RUN_ID_KEY

__all__ = ["Problem", "delta_tables", "validate_table"]

LOG = "_delta_log"
KNOWN_ACTIONS = frozenset(
    {"add", "remove", "metaData", "protocol", "txn", "commitInfo", "cdc", "domainMetadata"}
)
WRITER_OWNED_KEYS = frozenset({"delta.enableChangeDataFeed", "delta.enableDeletionVectors"})
"""Configuration keys whose value the writer may change (it must still keep them)."""
_LEGACY_WRITER_FEATURES = (
    (2, {"appendOnly", "invariants"}),
    (3, {"checkConstraints"}),
    (4, {"changeDataFeed", "generatedColumns"}),
    (5, {"columnMapping"}),
    (6, {"identityColumns"}),
)
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_UUID_CHARACTERS = 20


@dataclass(frozen=True)
class Problem:
    """A broken rule: which version, which rule (the names of the module docstring)."""

    version: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"version {self.version}: {self.rule}: {self.detail}"


def delta_tables(root: Path) -> list[Path]:
    """The folders under ``root`` (itself included) that hold a ``_delta_log`` with at
    least one commit or checkpoint; links are not followed."""
    tables = []
    for folder, subfolders, _ in os.walk(root):
        if LOG in subfolders and _log_files(Path(folder) / LOG) != ({}, {}):
            tables.append(Path(folder))
    return sorted(tables)


def validate_table(table: Path) -> list[Problem]:
    """Every rule the table's log breaks (empty: none)."""
    commits, checkpoints = _log_files(table / LOG)
    replay = _Replay(table)
    entries: dict[int, list[dict[str, Any]]] = {}
    for version, path in sorted(commits.items()):
        entries[version] = replay.parse(version, path)
    newest = max(commits.keys() | checkpoints.keys())
    if all(version in commits for version in range(newest + 1)):
        first = 0
    else:
        start = next(
            (
                version
                for version in sorted(checkpoints, reverse=True)
                if all(later in commits for later in range(version + 1, newest + 1))
            ),
            None,
        )
        if start is None:
            return [*replay.problems, Problem(newest, "files", "commits missing, no checkpoint")]
        replay.restore(_checkpoint_actions(checkpoints[start]))
        first = start + 1
    for version in range(first, newest + 1):
        replay.apply(version, entries[version])
        if version in checkpoints:
            replay.compare(version, _checkpoint_actions(checkpoints[version]))
    replay.finish()
    return replay.problems


def _log_files(log: Path) -> tuple[dict[int, Path], dict[int, Path]]:
    commits: dict[int, Path] = {}
    checkpoints: dict[int, Path] = {}
    if log.is_dir():
        for path in log.iterdir():
            if match := _COMMIT.match(path.name):
                commits[int(match[1])] = path
            elif match := _CHECKPOINT.match(path.name):
                checkpoints[int(match[1])] = path
    return commits, checkpoints


def _checkpoint_actions(path: Path) -> list[dict[str, Any]]:
    """A classic checkpoint's actions in their JSON commit form."""
    data = pq.read_table(path)
    actions = []
    for kind in ("protocol", "metaData", "add", "txn"):
        if kind in data.column_names:
            actions.extend({kind: _plain(value)} for value in data[kind].to_pylist() if value)
    return actions


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list) and all(isinstance(item, tuple) for item in value):
        return dict(value)
    return value


def _dv_key(descriptor: dict[str, Any] | None) -> str | None:
    """The protocol's ``uniqueId`` of a deletion vector."""
    if not descriptor:
        return None
    offset = descriptor.get("offset")
    key = f"{descriptor['storageType']}{descriptor['pathOrInlineDv']}"
    return key if offset is None else f"{key}@{offset}"


def _z85_decode(text: str) -> bytes:
    data = bytearray()
    for start in range(0, len(text), 5):
        value = 0
        for character in text[start : start + 5]:
            value = value * 85 + _Z85.index(character)
        data += value.to_bytes(4, "big")
    return bytes(data)


def _local_path(table: Path, path: str) -> Path:
    """A data file's path as a local one (relative paths are URL-encoded in the log)."""
    if "://" in path:
        return Path(unquote(urlparse(path).path))
    return table / unquote(path)


def _dv_file(table: Path, descriptor: dict[str, Any]) -> Path | None:
    """The file holding a deletion vector; None for an inline one."""
    where = str(descriptor["pathOrInlineDv"])
    if descriptor["storageType"] == "u":
        prefix, encoded = where[:-_UUID_CHARACTERS], where[-_UUID_CHARACTERS:]
        name = f"deletion_vector_{uuid.UUID(bytes=_z85_decode(encoded))}.bin"
        return table / prefix / name if prefix else table / name
    if descriptor["storageType"] == "p":
        return _local_path(table, where)
    return None


def _changes(action: Any) -> bool:
    """Whether a file action changes the table's rows."""
    return isinstance(action, dict) and action.get("dataChange", True) is not False


def _effective_features(protocol: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """The reader features, writer features, and those of them only implied by a legacy
    version (which an upgrade may leave out when never used)."""
    reader_version = protocol.get("minReaderVersion", 1)
    writer_version = protocol.get("minWriterVersion", 1)
    if reader_version >= 3:
        readers = set(protocol.get("readerFeatures") or ())
    else:
        readers = {"columnMapping"} if reader_version == 2 else set()
    implied = set(readers) if reader_version < 3 else set()
    if writer_version >= 7:
        writers = set(protocol.get("writerFeatures") or ())
    else:
        writers = set().union(
            *(features for since, features in _LEGACY_WRITER_FEATURES if writer_version >= since)
        )
        implied |= writers
    return readers, writers, implied


def _used_features(metadata: dict[str, Any]) -> set[str]:
    """The legacy features a version's metadata uses."""
    configuration = metadata.get("configuration") or {}
    schema = metadata.get("schemaString") or ""
    used = {
        "appendOnly": configuration.get("delta.appendOnly") == "true",
        "checkConstraints": any(key.startswith("delta.constraints.") for key in configuration),
        "changeDataFeed": configuration.get("delta.enableChangeDataFeed") == "true",
        "columnMapping": configuration.get("delta.columnMapping.mode", "none") != "none",
        "invariants": "delta.invariants" in schema,
        "generatedColumns": "delta.generationExpression" in schema,
        "identityColumns": "delta.identity." in schema,
    }
    return {feature for feature, is_used in used.items() if is_used}


@dataclass
class _Added:
    """A file an ``add`` named: where, and the versions it was added and left the table."""

    action: dict[str, Any]
    version: int
    removed: int | None = None


@dataclass
class _Replay:
    table: Path
    problems: list[Problem] = field(default_factory=list)
    protocol: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    live: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)
    """(path, deletion vector id) → its ``add``: the logical files of the table."""
    transactions: dict[str, int] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    added: list[_Added] = field(default_factory=list)
    cdc: list[tuple[int, str]] = field(default_factory=list)
    vacuums: list[int] = field(default_factory=list)

    def fail(self, version: int, rule: str, detail: str) -> None:
        self.problems.append(Problem(version, rule, detail))

    def parse(self, version: int, path: Path) -> list[dict[str, Any]]:
        actions = []
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                action = json.loads(line)
            except ValueError as error:
                self.fail(version, "parse", f"line {number} is not JSON ({error})")
                continue
            if not isinstance(action, dict) or len(action) != 1:
                self.fail(version, "parse", f"line {number} is not one action")
                continue
            if not action.keys() <= KNOWN_ACTIONS:
                self.fail(version, "parse", f"line {number}: unknown action {set(action)}")
                continue
            actions.append(action)
        infos = sum("commitInfo" in action for action in actions)
        if infos > 1:
            self.fail(version, "parse", f"{infos} commitInfo actions")
        return actions

    def restore(self, actions: list[dict[str, Any]]) -> None:
        """The state of a checkpoint, to replay the commits after it."""
        for action in actions:
            if "protocol" in action:
                self.protocol = action["protocol"]
            elif "metaData" in action:
                self.metadata = action["metaData"]
                self.used |= _used_features(self.metadata)
            elif "txn" in action:
                self.transactions[action["txn"]["appId"]] = int(action["txn"]["version"])
            elif "add" in action:
                add = action["add"]
                self.live[(add["path"], _dv_key(add.get("deletionVector")))] = add

    def apply(self, version: int, actions: list[dict[str, Any]]) -> None:
        info = next((action["commitInfo"] for action in actions if "commitInfo" in action), {})
        ours = RUN_ID_KEY in info
        if str(info.get("operation", "")).startswith("VACUUM"):
            self.vacuums.append(version)
        protocol_before, metadata_before = self.protocol, self.metadata
        transactions_before = dict(self.transactions)
        for action in actions:
            if "remove" in action:
                remove = action["remove"]
                key = (remove["path"], _dv_key(remove.get("deletionVector")))
                if self.live.pop(key, None) is not None:
                    for added in self.added:
                        if added.removed is None and added.action["path"] == remove["path"]:
                            added.removed = version
        for action in actions:
            if "add" in action:
                add = action["add"]
                self.live[(add["path"], _dv_key(add.get("deletionVector")))] = add
                self.added.append(_Added(add, version))
            elif "protocol" in action:
                self.protocol = action["protocol"]
            elif "metaData" in action:
                self.metadata = action["metaData"]
            elif "txn" in action:
                self.transactions[action["txn"]["appId"]] = int(action["txn"]["version"])
            elif "cdc" in action:
                self.cdc.append((version, action["cdc"]["path"]))
        if ours and any("protocol" in action for action in actions):
            self._check_protocol(version, protocol_before)
        self.used |= _used_features(self.metadata)
        self._check_files(version, actions)
        if ours:
            replaced = info.get("operation") == "WRITE"
            self._check_ours(version, actions, metadata_before, transactions_before, replaced)

    def _check_protocol(self, version: int, before: dict[str, Any]) -> None:
        protocol = self.protocol
        reader_version = protocol.get("minReaderVersion", 1)
        writer_version = protocol.get("minWriterVersion", 1)
        readers = protocol.get("readerFeatures")
        writers = protocol.get("writerFeatures")
        if reader_version >= 3 and writer_version < 7:
            self.fail(version, "protocol", "reader version 3 needs writer version 7")
        if (readers is not None) != (reader_version >= 3) or (writers is not None) != (
            writer_version >= 7
        ):
            self.fail(version, "protocol", f"features do not match the versions: {protocol}")
        if not set(readers or ()) <= set(writers or ()) and writer_version >= 7:
            self.fail(version, "protocol", "reader features missing from the writer features")
        if not before or protocol == before:
            return
        if reader_version < before.get("minReaderVersion", 1) or writer_version < before.get(
            "minWriterVersion", 1
        ):
            self.fail(version, "protocol", f"lowered from {before} to {protocol}")
        old_readers, old_writers, implied = _effective_features(before)
        new_readers, new_writers, _ = _effective_features(protocol)
        gone = (old_readers - new_readers) | (old_writers - new_writers)
        removed = {feature for feature in gone if feature not in implied or feature in self.used}
        if removed:
            self.fail(version, "protocol", f"features removed: {sorted(removed)}")

    def _check_files(self, version: int, actions: list[dict[str, Any]]) -> None:
        paths = [path for path, _ in self.live]
        if len(paths) != len(set(paths)):
            twice = sorted({path for path in paths if paths.count(path) > 1})
            self.fail(version, "files", f"live more than once: {twice}")
        readers, writers, _ = _effective_features(self.protocol)
        for action in actions:
            add = action.get("add")
            if not add or not add.get("deletionVector"):
                continue
            descriptor = add["deletionVector"]
            if "deletionVectors" not in readers or "deletionVectors" not in writers:
                self.fail(version, "deletionVectors", f"{add['path']}: the table lacks the feature")
            stats = json.loads(add.get("stats") or "{}")
            if stats.get("tightBounds") is not False:
                self.fail(version, "deletionVectors", f"{add['path']}: tightBounds is not false")
            records = stats.get("numRecords")
            data = _local_path(self.table, add["path"])
            if records is None or (data.exists() and records != pq.read_metadata(data).num_rows):
                self.fail(version, "deletionVectors", f"{add['path']}: numRecords {records} wrong")
            elif int(descriptor["cardinality"]) > records:
                self.fail(version, "deletionVectors", f"{add['path']}: more deleted than held")
            where = _dv_file(self.table, descriptor)
            end = int(descriptor.get("offset") or 0) + 8 + int(descriptor["sizeInBytes"])
            if where is not None and where.exists() and where.stat().st_size < end:
                self.fail(version, "deletionVectors", f"{where.name} is shorter than its vectors")

    def _check_ours(
        self,
        version: int,
        actions: list[dict[str, Any]],
        metadata_before: dict[str, Any],
        transactions_before: dict[str, int],
        replaced: bool,
    ) -> None:
        metadata = self.metadata
        if metadata_before and metadata.get("id") != metadata_before.get("id"):
            self.fail(version, "metadata", "the table id changed")
        old = metadata_before.get("configuration") or {}
        new = metadata.get("configuration") or {}
        if lost := sorted(old.keys() - new.keys()):
            self.fail(version, "metadata", f"configuration keys dropped: {lost}")
        if changed := sorted(
            key for key in old.keys() & new.keys() - WRITER_OWNED_KEYS if old[key] != new[key]
        ):
            self.fail(version, "metadata", f"configuration values changed: {changed}")
        for app, before in transactions_before.items():
            if self.transactions.get(app, before) < before:
                self.fail(version, "txn", f"{app} went from {before} to {self.transactions[app]}")
        for action in actions:
            add = action.get("add")
            if not add or add.get("deletionVector"):
                continue
            records = json.loads(add.get("stats") or "{}").get("numRecords")
            data = _local_path(self.table, add["path"])
            if records is not None and data.exists() and records != pq.read_metadata(data).num_rows:
                self.fail(version, "stats", f"{add['path']}: numRecords {records} wrong")
        changed = {kind for action in actions for kind, body in action.items() if _changes(body)}
        if (
            new.get("delta.enableChangeDataFeed") == "true"
            and not replaced
            and {"add", "remove"} <= changed
            and not any("cdc" in action for action in actions)
        ):
            self.fail(version, "cdc", "rows changed or rewritten without cdc actions")

    def compare(self, version: int, actions: list[dict[str, Any]]) -> None:
        """A checkpoint of ``version`` against the replayed state."""
        checkpoint = _Replay(self.table)
        checkpoint.restore(actions)
        if checkpoint.live.keys() != self.live.keys():
            self.fail(version, "checkpoint", "its files differ from the commits'")
        if _effective_features(checkpoint.protocol)[:2] != _effective_features(self.protocol)[:2]:
            self.fail(version, "checkpoint", "its protocol differs from the commits'")
        for key in ("id", "configuration", "schemaString"):
            if checkpoint.metadata.get(key) != self.metadata.get(key):
                self.fail(version, "checkpoint", f"its metadata {key} differs from the commits'")
        if checkpoint.transactions != self.transactions:
            self.fail(version, "checkpoint", "its app transactions differ from the commits'")

    def finish(self) -> None:
        """Files that must still exist after the whole log."""

        def vacuumed_after(version: int | None) -> bool:
            return version is not None and any(vacuum > version for vacuum in self.vacuums)

        for added in self.added:
            path = _local_path(self.table, added.action["path"])
            if not path.exists() and not vacuumed_after(added.removed):
                self.fail(added.version, "files", f"{added.action['path']} is missing")
            descriptor = added.action.get("deletionVector")
            where = descriptor and _dv_file(self.table, descriptor)
            if where and not where.exists() and not vacuumed_after(added.removed):
                self.fail(added.version, "files", f"deletion vector file {where.name} is missing")
        for version, cdc_path in self.cdc:
            if not _local_path(self.table, cdc_path).exists() and not vacuumed_after(version):
                self.fail(version, "files", f"cdc file {cdc_path} is missing")
