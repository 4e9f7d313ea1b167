"""The Delta transaction log of one table: reading its state, committing, checkpointing.

The writer commits itself, because ``deltalake`` (delta-rs) cannot write deletion vectors
(delta-io/delta-rs#4079). A commit is ``_delta_log/<version>.json`` created only if absent
(``Destination.create_new``: a link on a local disk, ``If-None-Match: *`` on Azure), so of
two writers racing for a version exactly one wins, as the protocol requires.

The state is replayed from the newest classic checkpoint (``<version>.checkpoint.parquet``)
and the JSON commits after it: the protocol, the metadata, the live data files with their
deletion vectors, and the app transaction versions. Checkpoints are written by delta-rs
(``DeltaTable.create_checkpoint``) every ``CHECKPOINT_INTERVAL`` versions, so a reader
never replays more than that many JSON commits.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ExportError
from ._deletion_vectors import descriptor_key
from .destination import Destination

__all__ = [
    "CHECKPOINT_INTERVAL",
    "TableState",
    "commit",
    "create_checkpoint",
    "file_statistics",
    "metadata_action",
    "now_ms",
    "protocol_action",
    "read_state",
    "schema_string",
    "unsupported_features",
]

CHECKPOINT_INTERVAL = 10
LOG_FOLDER = "_delta_log"
LAST_CHECKPOINT = "_last_checkpoint"
SUPPORTED_READER_FEATURES = frozenset({"deletionVectors"})
SUPPORTED_WRITER_FEATURES = frozenset(
    {"deletionVectors", "changeDataFeed", "appendOnly", "invariants", "checkConstraints"}
)
_STATISTICS_COLUMNS = 32  # delta.dataSkippingNumIndexedCols, the protocol's default
_STRING_STATISTICS_CHARACTERS = 32
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
) -> None:
    """Write ``actions`` as the table's ``version``, which must not exist yet.

    Raises:
        ExportError: another writer committed that version first.
    """
    entry = "".join(json.dumps(action, separators=(",", ":")) + "\n" for action in actions)
    if not destination.create_new(_commit_path(table_folder, version), entry.encode()):
        raise ExportError(
            f"Another writer committed version {version} of the Delta table {table_folder} "
            "first; the next run continues from its state.",
            target=table_folder,
        )


def protocol_action(*, deletion_vectors: bool, current: dict[str, Any]) -> dict[str, Any]:
    """The protocol the writer needs, never below the table's ``current`` one (features in
    sorted order, so equal protocols compare equal)."""
    readers = set(current.get("readerFeatures") or ())
    if deletion_vectors or "deletionVectors" in readers:
        writers = set(current.get("writerFeatures") or ())
        return {
            "minReaderVersion": 3,
            "minWriterVersion": 7,
            "readerFeatures": sorted(readers | {"deletionVectors"}),
            "writerFeatures": sorted(writers | {"changeDataFeed", "deletionVectors"}),
        }
    return {"minReaderVersion": 1, "minWriterVersion": 4}


def unsupported_features(protocol: dict[str, Any]) -> set[str]:
    """Features of a table's protocol this writer cannot honour."""
    readers = set(protocol.get("readerFeatures") or ()) - SUPPORTED_READER_FEATURES
    writers = set(protocol.get("writerFeatures") or ()) - SUPPORTED_WRITER_FEATURES
    too_new = protocol.get("minReaderVersion", 1) > 3 or protocol.get("minWriterVersion", 1) > 7
    return readers | writers | ({"newer protocol"} if too_new else set())


def metadata_action(
    schema: pa.Schema, configuration: dict[str, str], *, current: dict[str, Any]
) -> dict[str, Any]:
    """The table's metadata with ``schema`` and ``configuration``; a new table gets a new id."""
    return {
        "id": current.get("id") or str(uuid.uuid4()),
        "format": {"provider": "parquet", "options": {}},
        "schemaString": schema_string(schema),
        "partitionColumns": [],
        "configuration": configuration,
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
            "minValues": minimum,
            "maxValues": maximum,
            "nullCount": nulls,
        },
        separators=(",", ":"),
    )


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


def _commit_path(table_folder: str, version: int) -> str:
    return f"{table_folder}/{LOG_FOLDER}/{version:020d}.json"


def _checkpoint_actions(
    destination: Destination, table_folder: str, version: int
) -> list[dict[str, Any]]:
    content = destination.read_bytes(
        f"{table_folder}/{LOG_FOLDER}/{version:020d}.checkpoint.parquet"
    )
    table = pq.read_table(pa.BufferReader(content))
    actions = []
    for kind in ("protocol", "metaData", "add", "txn"):
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
