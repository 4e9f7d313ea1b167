"""The Delta transaction log of one table: reading its state, committing, checkpointing.

The writer commits itself, because ``deltalake`` (delta-rs) cannot write deletion vectors
(delta-io/delta-rs#4079). A commit is ``_delta_log/<version>.json`` created only if absent
(``Destination.create_new``: a link on a local disk, ``If-None-Match: *`` on Azure), so of
two writers racing for a version exactly one wins, as the protocol requires.

A request retried after a lost
response finds its own commit there (Azure answers the retried conditional PUT with 409):
``commit`` tells that apart from a lost race by comparing the commit with the bytes it sent.

The state is replayed from the newest classic checkpoint (``<version>.checkpoint.parquet``)
and the JSON commits after it: the protocol, the metadata, the live data files with their
deletion vectors, and the app transaction versions. Checkpoints are written by delta-rs
(``DeltaTable.create_checkpoint``) every ``CHECKPOINT_INTERVAL`` versions, so a reader
never replays more than that many JSON commits.

Protocol: a table's features are those its ``readerFeatures``/``writerFeatures`` list
(reader 3, writer 7) or its legacy versions imply (reader 2: column mapping; writer 2:
append-only and invariants, 3: CHECK constraints, 4: Change Data Feed and generated
columns, 5: column mapping, 6: identity columns). The writer never removes one nor lowers a
version (``protocol_action``), and writes only tables whose every feature it implements or
whose feature is not in use (``unsupported_features``): column mapping, generated and
identity columns are refused once a table uses them.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ExportError, IndustryDataError
from ._deletion_vectors import deletion_vector_path, descriptor_key
from .destination import Destination

__all__ = [
    "CHECKPOINT_INTERVAL",
    "TableState",
    "append_only",
    "commit",
    "create_checkpoint",
    "file_statistics",
    "log_retention_ms",
    "metadata_action",
    "named_files",
    "now_ms",
    "protocol_action",
    "read_commit",
    "read_state",
    "reader_features",
    "row_rules",
    "schema_string",
    "unsupported_features",
    "wide_statistics",
    "writer_features",
]

CHECKPOINT_INTERVAL = 10
LOG_FOLDER = "_delta_log"
LAST_CHECKPOINT = "_last_checkpoint"
IMPLEMENTED_READER_FEATURES = frozenset({"deletionVectors", "vacuumProtocolCheck"})
IMPLEMENTED_WRITER_FEATURES = frozenset(
    {
        "appendOnly",  # honoured: a commit that changes or removes rows is refused
        "changeDataFeed",
        "checkConstraints",  # honoured: a commit that adds rows is refused (``row_rules``)
        "deletionVectors",
        "invariants",  # likewise
        "vacuumProtocolCheck",  # only VACUUM must check it, and the writer never vacuums
    }
)
UNUSED_FEATURES_ALLOWED = frozenset(
    {"columnMapping", "generatedColumns", "identityColumns", "timestampNtz", "variantType"}
)
"""Features the writer does not implement, but may write a table that supports and does not
use (a table at a legacy writer version supports several; delta-rs adds ``variantType`` to
the tables whose properties it sets)."""
_TYPE_FEATURES = {"timestamp_ntz": "timestampNtz", "variant": "variantType"}
_READER_VERSION_FEATURES = {2: frozenset({"columnMapping"})}
_WRITER_VERSION_FEATURES = {
    2: frozenset({"appendOnly", "invariants"}),
    3: frozenset({"checkConstraints"}),
    4: frozenset({"changeDataFeed", "generatedColumns"}),
    5: frozenset({"columnMapping"}),
    6: frozenset({"identityColumns"}),
}
"""The features each legacy protocol version adds to the previous one."""
_DEFAULT_LOG_RETENTION_MS = 30 * 24 * 3600 * 1000  # delta.logRetentionDuration's default
_INTERVAL = re.compile(r"^\s*(?:interval\s+)?(\d+)\s*([a-z]+?)s?\s*$", re.IGNORECASE)
_INTERVAL_UNITS_MS = {
    "millisecond": 1,
    "second": 1000,
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 604_800_000,
}
_STATISTICS_COLUMNS = 32  # delta.dataSkippingNumIndexedCols, the protocol's default
_STRING_STATISTICS_CHARACTERS = 32
_CONSTRAINT_PREFIX = "delta.constraints."
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_DELTA_TYPES = {
    pa.string(): "string",
    pa.bool_(): "boolean",
    pa.int32(): "integer",
    pa.int64(): "long",
    pa.timestamp("us", tz="UTC"): "timestamp",
}


@dataclass
class TableState:
    """A table as of its newest version."""

    version: int
    protocol: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Live data files: path → its ``add`` action."""
    transactions: dict[str, int] = field(default_factory=dict)
    """App id → the version of its newest app transaction."""

    def apply(self, actions: list[dict[str, Any]]) -> None:
        """One version's actions: removes first, then adds (reconciliation by path and
        deletion vector, the same within a version whatever the order)."""
        for action in actions:
            if "remove" in action:
                removed = action["remove"]
                live = self.files.get(removed["path"])
                if live is not None and descriptor_key(live.get("deletionVector")) == (
                    descriptor_key(removed.get("deletionVector"))
                ):
                    del self.files[removed["path"]]
        for action in actions:
            if "add" in action:
                self.files[action["add"]["path"]] = action["add"]
            elif "protocol" in action:
                self.protocol = action["protocol"]
            elif "metaData" in action:
                self.metadata = action["metaData"]
            elif "txn" in action:
                self.transactions[action["txn"]["appId"]] = int(action["txn"]["version"])


def _log_segment(destination: Destination, table_folder: str) -> tuple[int | None, int] | None:
    """The version of the checkpoint to replay from (None: from version 0) and the newest
    version; None when the table has no log.

    Raises:
        ExportError: the log cannot be replayed from a classic checkpoint or version 0.
    """
    commits: set[int] = set()
    checkpoints: set[int] = set()
    for path in destination.list(f"{table_folder}/{LOG_FOLDER}"):
        name = path.rsplit("/", 1)[-1]
        if match := _COMMIT.match(name):
            commits.add(int(match[1]))
        elif match := _CHECKPOINT.match(name):
            checkpoints.add(int(match[1]))
    if not commits and not checkpoints:
        return None
    newest = max(commits | checkpoints)
    start = next(
        (
            version
            for version in sorted(checkpoints, reverse=True)
            if all(later in commits for later in range(version + 1, newest + 1))
        ),
        None,
    )
    if start is None and not all(version in commits for version in range(newest + 1)):
        raise ExportError(
            f"The Delta log of {table_folder} cannot be read: commits are missing and there is "
            "no classic checkpoint to start from.",
            target=table_folder,
        )
    return start, newest


def read_state(destination: Destination, table_folder: str) -> TableState | None:
    """The newest state of the Delta table in ``table_folder``; None when there is none.

    Raises:
        ExportError: the log cannot be replayed from a classic checkpoint or version 0.
    """
    segment = _log_segment(destination, table_folder)
    if segment is None:
        return None
    start, newest = segment
    state = TableState(version=newest)
    if start is not None:
        state.apply(_checkpoint_actions(destination, table_folder, start))
    for version in range((start if start is not None else -1) + 1, newest + 1):
        entry = destination.read_bytes(_commit_path(table_folder, version))
        state.apply([json.loads(line) for line in entry.splitlines() if line.strip()])
    return state


def commit(
    destination: Destination, table_folder: str, version: int, actions: list[dict[str, Any]]
) -> bool:
    """Write ``actions`` as the table's ``version`` unless that version exists; whether the
    version now holds them.

    A version that exists with exactly these bytes is this writer's own commit: a request
    that succeeded, lost its response and was retried (the retry is refused because the
    object exists). A version that exists with other bytes was committed first by another
    writer: the caller re-reads the log and tries again.

    Raises:
        ExportError, DestinationUnreachable: the destination failed and the commit is not
            there (whether it was made cannot be told when checking fails too).
    """
    entry = "".join(json.dumps(action, separators=(",", ":")) + "\n" for action in actions)
    data = entry.encode()
    path = _commit_path(table_folder, version)
    try:
        created = destination.create_new(path, data)
    except IndustryDataError:
        if not destination.exists(path):
            raise
        created = False
    return created or destination.read_bytes(path) == data


def read_commit(destination: Destination, table_folder: str, version: int) -> list[dict[str, Any]]:
    """The actions of one JSON commit."""
    entry = destination.read_bytes(_commit_path(table_folder, version))
    return [json.loads(line) for line in entry.splitlines() if line.strip()]


def named_files(destination: Destination, table_folder: str) -> set[str]:
    """Every path an ``add``, ``remove`` or ``cdc`` action of the log (its JSON commits and
    checkpoints still there) names, deletion vector files included: files a reader or
    VACUUM may still need.

    Raises:
        ValueError: a deletion vector is stored by absolute path.
    """
    named: set[str] = set()
    for path in destination.list(f"{table_folder}/{LOG_FOLDER}"):
        name = path.rsplit("/", 1)[-1]
        if match := _COMMIT.match(name):
            actions = read_commit(destination, table_folder, int(match[1]))
        elif match := _CHECKPOINT.match(name):
            actions = _checkpoint_actions(
                destination, table_folder, int(match[1]), kinds=("add", "remove")
            )
        else:
            continue
        for action in actions:
            for kind in ("add", "remove", "cdc"):
                if kind not in action:
                    continue
                named.add(action[kind]["path"])
                descriptor = action[kind].get("deletionVector")
                if descriptor and (vector := deletion_vector_path(descriptor)) is not None:
                    named.add(vector)
    return named


def reader_features(protocol: dict[str, Any]) -> set[str]:
    """The reader features a protocol supports: listed (reader 3) or implied by its version."""
    version = int(protocol.get("minReaderVersion", 1))
    if version >= 3:
        return set(protocol.get("readerFeatures") or ())
    return _implied_features(_READER_VERSION_FEATURES, version)


def writer_features(protocol: dict[str, Any]) -> set[str]:
    """The writer features a protocol supports: listed (writer 7) or implied by its version."""
    version = int(protocol.get("minWriterVersion", 1))
    if version >= 7:
        return set(protocol.get("writerFeatures") or ())
    return _implied_features(_WRITER_VERSION_FEATURES, version)


def protocol_action(*, deletion_vectors: bool, current: dict[str, Any]) -> dict[str, Any]:
    """The protocol the writer needs (Change Data Feed, and deletion vectors when asked)
    added to the table's ``current`` one: no feature removed, no version lowered.

    Legacy versions stay while they express every feature (reader 1 / writer 4 for a new
    table without deletion vectors); otherwise writer 7 lists every feature the table had
    (those its old version implied included), and reader 3 every reader feature. Features
    are sorted, so equal protocols compare equal.
    """
    reader_version = int(current.get("minReaderVersion", 1))
    writer_version = int(current.get("minWriterVersion", 1))
    readers = reader_features(current)
    writers = writer_features(current) | {"changeDataFeed"}
    if deletion_vectors:
        readers.add("deletionVectors")
    writers |= readers  # a reader feature is a writer feature too
    legacy_reader = _legacy_version(_READER_VERSION_FEATURES, readers, below=3)
    legacy_writer = _legacy_version(_WRITER_VERSION_FEATURES, writers, below=7)
    protocol: dict[str, Any] = {}
    if reader_version < 3 and legacy_reader is not None:
        protocol["minReaderVersion"] = max(reader_version, legacy_reader)
    else:
        protocol["minReaderVersion"] = 3
    if protocol["minReaderVersion"] < 3 and writer_version < 7 and legacy_writer is not None:
        protocol["minWriterVersion"] = max(writer_version, legacy_writer)
        return protocol
    protocol["minWriterVersion"] = 7
    if protocol["minReaderVersion"] == 3:
        protocol["readerFeatures"] = sorted(readers)
    protocol["writerFeatures"] = sorted(writers)
    return protocol


def unsupported_features(protocol: dict[str, Any], metadata: dict[str, Any]) -> set[str]:
    """Features of a table this writer cannot honour: features it does not implement,
    except those it may leave unused (``UNUSED_FEATURES_ALLOWED``) while the table does not
    use them; ``newer protocol`` for versions past reader 3 / writer 7."""
    allowed = UNUSED_FEATURES_ALLOWED - _features_in_use(metadata)
    readers = reader_features(protocol) - IMPLEMENTED_READER_FEATURES - allowed
    writers = writer_features(protocol) - IMPLEMENTED_WRITER_FEATURES - allowed
    too_new = (
        int(protocol.get("minReaderVersion", 1)) > 3
        or int(protocol.get("minWriterVersion", 1)) > 7
    )
    return readers | writers | ({"newer protocol"} if too_new else set())


def append_only(protocol: dict[str, Any], metadata: dict[str, Any]) -> bool:
    """Whether the table is append-only: no commit may change or remove its rows."""
    configuration = metadata.get("configuration") or {}
    return (
        "appendOnly" in writer_features(protocol)
        and str(configuration.get("delta.appendOnly", "")).lower() == "true"
    )


def row_rules(protocol: dict[str, Any], metadata: dict[str, Any]) -> list[str]:
    """The rules every row added to the table must satisfy, which this writer does not
    evaluate: CHECK constraints, column invariants, columns declared not nullable."""
    writers = writer_features(protocol)
    configuration = metadata.get("configuration") or {}
    rules = []
    if "checkConstraints" in writers:
        rules += [
            f"CHECK constraint {key.removeprefix(_CONSTRAINT_PREFIX)}"
            for key in sorted(configuration)
            if key.startswith(_CONSTRAINT_PREFIX)
        ]
    for column in _schema_fields(metadata):
        if "invariants" in writers and "delta.invariants" in (column.get("metadata") or {}):
            rules.append(f"invariant on {column['name']}")
        if column.get("nullable") is False:
            rules.append(f"{column['name']} NOT NULL")
    return rules


def log_retention_ms(metadata: dict[str, Any]) -> int | None:
    """``delta.logRetentionDuration`` in milliseconds (30 days when unset); None when it
    cannot be read."""
    configuration = metadata.get("configuration") or {}
    setting = configuration.get("delta.logRetentionDuration")
    if setting is None:
        return _DEFAULT_LOG_RETENTION_MS
    match = _INTERVAL.match(str(setting))
    if match is None or match[2].lower() not in _INTERVAL_UNITS_MS:
        return None
    return int(match[1]) * _INTERVAL_UNITS_MS[match[2].lower()]


def metadata_action(
    schema: pa.Schema, configuration: dict[str, str], *, current: dict[str, Any]
) -> dict[str, Any]:
    """The table's metadata with the writer's ``configuration`` keys set, every other key
    and field kept, and no partitions; a new table gets a new id and ``schema`` (a table
    that has one keeps its schema string, whose columns the caller checked)."""
    return {
        **current,
        "id": current.get("id") or str(uuid.uuid4()),
        "format": current.get("format") or {"provider": "parquet", "options": {}},
        "schemaString": current.get("schemaString") or schema_string(schema),
        "partitionColumns": [],
        "configuration": {**(current.get("configuration") or {}), **configuration},
        "createdTime": current.get("createdTime") or now_ms(),
    }


def schema_string(schema: pa.Schema) -> str:
    """The Delta schema (the protocol's JSON serialisation) of an Arrow schema."""
    fields = [
        {"name": item.name, "type": _DELTA_TYPES[item.type], "nullable": True, "metadata": {}}
        for item in schema
    ]
    return json.dumps({"type": "struct", "fields": fields}, separators=(",", ":"))


def file_statistics(metadata: pq.FileMetaData) -> str:
    """The ``stats`` of an ``add`` action, from the Parquet footer the writer just wrote.

    Only bounds that are certainly right are given: a column without statistics in some row
    group that has values gets none, and a string longer than 32 characters gives its prefix
    as the minimum and no maximum.
    """
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    schema = metadata.schema.to_arrow_schema()
    for index, column in enumerate(schema.names[:_STATISTICS_COLUMNS]):
        lows, highs, null_count, complete = [], [], 0, True
        for group in range(metadata.num_row_groups):
            chunk = metadata.row_group(group).column(index)
            statistics = chunk.statistics
            if statistics is None:
                complete = False
                continue
            null_count += statistics.null_count
            if statistics.has_min_max:
                lows.append(statistics.min)
                highs.append(statistics.max)
            elif statistics.null_count < chunk.num_values:
                complete = False
        nulls[column] = null_count
        if complete and lows:
            low, high = min(lows), max(highs)
            if isinstance(low, str):
                minimum[column] = low[:_STRING_STATISTICS_CHARACTERS]
                if len(high) <= _STRING_STATISTICS_CHARACTERS:
                    maximum[column] = high
            else:
                minimum[column], maximum[column] = _json_value(low), _json_value(high)
    return json.dumps(
        {
            "numRecords": metadata.num_rows,
            "tightBounds": True,
            "minValues": minimum,
            "maxValues": maximum,
            "nullCount": nulls,
        },
        separators=(",", ":"),
    )


def wide_statistics(stats: str) -> str:
    """The ``stats`` of a data file re-added with a deletion vector: ``numRecords`` stays the
    file's physical row count, as the protocol requires, and the other statistics stay as
    they are, which it allows as *wide* bounds (``tightBounds: false``): min/max bound the
    live values without having to be reached, and a null count of 0 or of every record
    still says none or all of the live values are null."""
    return json.dumps({**json.loads(stats), "tightBounds": False}, separators=(",", ":"))


def create_checkpoint(destination: Destination, table_folder: str) -> None:
    """A checkpoint of the newest version, written by delta-rs.

    delta-rs writes by path and follows links, so it never writes the destination itself:
    it checkpoints a copy of the log segment it needs (the newest checkpoint and the commits
    after it) in a private temporary folder, and what it adds there (the checkpoint, then
    ``_last_checkpoint``) is copied back through the destination's own writes.
    """
    from deltalake import DeltaTable

    segment = _log_segment(destination, table_folder)
    if segment is None:
        return
    start, newest = segment
    first_commit = start + 1 if start is not None else 0
    names = [f"{version:020d}.json" for version in range(first_commit, newest + 1)]
    if start is not None:
        names.append(f"{start:020d}.checkpoint.parquet")
    with tempfile.TemporaryDirectory(prefix="industrydata-checkpoint-") as staging:
        log_folder = Path(staging) / LOG_FOLDER
        log_folder.mkdir()
        for name in names:
            (log_folder / name).write_bytes(
                destination.read_bytes(f"{table_folder}/{LOG_FOLDER}/{name}")
            )
        DeltaTable(staging).create_checkpoint()
        written = sorted(
            (file for file in log_folder.iterdir() if file.is_file() and file.name not in names),
            key=lambda file: file.name == LAST_CHECKPOINT,
        )
        for file in written:
            destination.write_bytes(f"{table_folder}/{LOG_FOLDER}/{file.name}", file.read_bytes())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return value


def _implied_features(added: dict[int, frozenset[str]], version: int) -> set[str]:
    return set().union(*(features for since, features in added.items() if since <= version))


def _legacy_version(added: dict[int, frozenset[str]], features: set[str], below: int) -> int | None:
    """The lowest legacy version (1 up to ``below - 1``) implying ``features``, if any."""
    return next(
        (
            version
            for version in range(1, below)
            if features <= _implied_features(added, version)
        ),
        None,
    )


def _schema_fields(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    schema = metadata.get("schemaString")
    return list(json.loads(schema).get("fields") or ()) if schema else []


def _nested_fields(fields: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every struct field, nested ones (in structs, arrays, maps) included."""
    for column in fields:
        yield column
        pending = [column.get("type")]
        while pending:
            kind = pending.pop()
            if isinstance(kind, dict):
                yield from _nested_fields(kind.get("fields") or [])
                pending += [kind.get(key) for key in ("elementType", "keyType", "valueType")]


def _nested_types(kind: Any) -> Iterator[str]:
    """The primitive type names of a field's type, inside arrays and maps too (the fields of
    a nested struct are visited by ``_nested_fields``)."""
    pending = [kind]
    while pending:
        kind = pending.pop()
        if isinstance(kind, str):
            yield kind
        elif isinstance(kind, dict) and kind.get("type") != "struct":
            pending += [kind.get(key) for key in ("elementType", "keyType", "valueType")]


def _features_in_use(metadata: dict[str, Any]) -> set[str]:
    """Of ``UNUSED_FEATURES_ALLOWED``, those the table's metadata shows in use."""
    configuration = metadata.get("configuration") or {}
    used = set()
    if str(configuration.get("delta.columnMapping.mode", "none")).lower() != "none":
        used.add("columnMapping")
    for column in _nested_fields(_schema_fields(metadata)):
        for kind in _nested_types(column.get("type")):
            if kind in _TYPE_FEATURES:
                used.add(_TYPE_FEATURES[kind])
        keys = set(column.get("metadata") or {})
        if any(key.startswith("delta.columnMapping.") for key in keys):
            used.add("columnMapping")
        if "delta.generationExpression" in keys:
            used.add("generatedColumns")
        if any(key.startswith("delta.identity.") for key in keys):
            used.add("identityColumns")
    return used


def _commit_path(table_folder: str, version: int) -> str:
    return f"{table_folder}/{LOG_FOLDER}/{version:020d}.json"


def _checkpoint_actions(
    destination: Destination,
    table_folder: str,
    version: int,
    kinds: tuple[str, ...] = ("protocol", "metaData", "add", "txn"),
) -> list[dict[str, Any]]:
    content = destination.read_bytes(
        f"{table_folder}/{LOG_FOLDER}/{version:020d}.checkpoint.parquet"
    )
    table = pq.read_table(pa.BufferReader(content))
    actions = []
    for kind in kinds:
        if kind in table.column_names:
            actions.extend({kind: _plain(value)} for value in table[kind].to_pylist() if value)
    return actions


def _plain(value: Any) -> Any:
    """A checkpoint value as its JSON commit form: maps as dicts, no null fields."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list) and all(
        isinstance(item, tuple) and len(item) == 2 for item in value
    ):
        return {key: item for key, item in value}
    return value
