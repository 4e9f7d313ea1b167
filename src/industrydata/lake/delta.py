"""The ``delta`` writer: one Delta Lake table per canonical table, changed incrementally.

``<destination>/<Table>/`` is a Delta table whose columns are the table's ``arrow_schema``
(the CDM names; Delta ``string``, ``timestamp``, ``boolean`` and ``integer``), zstd Parquet
data files of at most ``MAX_FILE_ROWS`` rows, no partitions, the Change Data Feed on. Every
run makes exactly one commit per table, which carries:

* the app transaction ``industrydata`` whose version is the run's start in epoch
  milliseconds (a table already at or past it is left alone: a retried run commits nothing
  twice and a stale run never overwrites a newer one, the ``txnAppId``/``txnVersion`` rule
  of Spark's idempotent writes), and the run id under ``industrydata.runId`` in its commit
  info;
* the app transaction ``industrydata.changes.<store epoch>`` whose version is the store's
  change version the table now reflects (``canonical.changes``), kept in checkpoints like
  every app transaction.

The first run writes every row. A later run asks the store only for the rows changed since
the version the table reflects and for the row numbers of rows removed since; it appends the
changed rows as a new data file and deletes the old copies of changed and removed rows with
**deletion vectors** (``_deletion_vectors``), so its cost follows the size of the change,
not of the table. To find an old copy without reading the table, each data file has a
*row-number locator*, ``_industrydata/row-numbers/<data file>``: the store's ``RowNumber``
of each of its rows, in file order (hidden from Delta readers, which skip folders starting
with ``_``). A data file more than ``REWRITE_FRACTION`` deleted is rewritten instead (its
live rows move into the run's new file), which keeps tables compact without an OPTIMIZE.

When the table cannot be continued (a first run; the store was replaced, so its epoch
differs; a live data file has no locator because another writer rewrote it; another
schema), the run replaces every live file by a full copy of the rows, in one commit.

With ``deletion_vectors=False`` (for consumers whose readers lack the ``deletionVectors``
feature) every touched file is rewritten instead: the same result, copy-on-write cost.
Updates appear in the Change Data Feed as the delete of the old row and the insert of the
new one (readers derive both from the deletion vectors and the added file).

Each commit is atomic, so a reader sees every table at its version before or after the run,
never half a change. A killed run may leave data, locator and deletion vector files no
commit names: Delta readers ignore them, VACUUM (run by the consumer, with the retention
they choose) deletes the data and deletion vector files, and the next run deletes stale
locators. The writer never vacuums: that would cut the consumer's time travel.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, Protocol, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyroaring import BitMap64

from ..canonical.arrow import arrow_schema, conform_batch
from ..canonical.changes import ChangePosition
from ..canonical.tables import CanonicalTable
from ..errors import ExportError, IndustryDataError
from . import _delta_log as log
from ._deletion_vectors import DeletionVectorFile, read_deletion_vector
from ._storage_errors import storage_errors
from .destination import Destination
from .results import SnapshotResult, TableResult

__all__ = [
    "APP_ID",
    "CHANGES_APP_PREFIX",
    "LOCATOR_FOLDER",
    "RUN_ID_KEY",
    "ChangeSource",
    "transaction_version",
    "write_delta",
]

APP_ID = "industrydata"
"""The app id of the transactions that version each run (its start in epoch milliseconds)."""
CHANGES_APP_PREFIX = "industrydata.changes."
"""With the store's epoch, the app id of the transactions that record its change version."""
RUN_ID_KEY = "industrydata.runId"
"""The commit info key that carries the run id."""
ROW_NUMBER = "RowNumber"
"""The trailing column of the source's batches: the store's row number of each row."""
LOCATOR_FOLDER = "_industrydata/row-numbers"
MAX_FILE_ROWS = 1 << 20
REWRITE_FRACTION = 0.5
REWRITE_BATCH_ROWS = 1 << 16
"""Rows of an old data file a rewrite decodes, filters and writes at a time."""
_COMPRESSION = "zstd"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ROW_NUMBERS_SCHEMA = pa.schema([pa.field(ROW_NUMBER, pa.int64(), nullable=False)])


class ChangeSource(Protocol):
    """The store's side of a run, all read in one snapshot (``runs.export`` adapts the
    store reader). Batches carry the table's columns and a trailing ``RowNumber``."""

    @property
    def position(self) -> ChangePosition | None:
        """The store's change epoch and version in the snapshot; None: no rows yet."""
        ...

    def rows(self, table: CanonicalTable) -> Iterable[pa.RecordBatch]:
        """Every row of the table."""
        ...

    def changed_rows(self, table: CanonicalTable, since: int) -> Iterable[pa.RecordBatch]:
        """The rows inserted or updated after change version ``since``."""
        ...

    def removed_rows(self, table: CanonicalTable, since: int) -> pa.Array:
        """Row numbers (int64) of the rows deleted after change version ``since``."""
        ...


def transaction_version(run_time: datetime) -> int:
    """The app transaction version of a run: its start in epoch milliseconds (naive = UTC),
    which grows from run to run of a flow."""
    if run_time.tzinfo is None:
        run_time = run_time.replace(tzinfo=timezone.utc)
    return (run_time - _EPOCH) // timedelta(milliseconds=1)


def write_delta(
    destination: Destination,
    *,
    run_id: str,
    run_time: datetime,
    tables: Iterable[CanonicalTable],
    source: ChangeSource,
    deletion_vectors: bool = True,
    on_table_done: Callable[[TableResult], None] | None = None,
) -> SnapshotResult:
    """Bring each table's Delta table to the store's rows, one commit per table.

    Args:
        destination: where the tables live (one that can hold Delta tables: ``delta_location``).
        run_id: recorded in every commit (``RUN_ID_KEY``).
        run_time: the run's start; gives the commits' app transaction version, which makes a
            retry of the same run a no-op.
        tables: the canonical tables to write, in order.
        source: the store's rows and changes, read in one snapshot.
        deletion_vectors: delete old rows with deletion vectors (else rewrite their files).
        on_table_done: called after each table's commit.

    Returns:
        The snapshot id is the highest table version after the run. Tables are created
        together and each run commits to every one, so it is every table's version unless a
        run was killed between two tables.

    Raises:
        InvalidDestination: the destination cannot hold Delta tables.
        ExportError, DestinationUnreachable: the destination failed, or a table uses Delta
            features this writer cannot honour; tables already committed by this run stay
            committed, the others keep their previous version.
    """
    destination.delta_location()  # a destination that cannot hold Delta tables says so here
    run = _Run(
        run_id=run_id,
        version=transaction_version(run_time),
        position=source.position,
        deletion_vectors=deletion_vectors,
    )
    results: list[TableResult] = []
    versions: list[int] = []
    for table in tables:
        with storage_errors("write", table.name):
            result, version, committed = _TableWriter(destination, table, source, run).write()
            if committed and version > 0 and version % log.CHECKPOINT_INTERVAL == 0:
                log.create_checkpoint(destination, table.name)
        results.append(result)
        versions.append(version)
        if on_table_done is not None:
            on_table_done(result)
    return SnapshotResult(snapshot_id=str(max(versions)) if versions else "", tables=tuple(results))


@dataclass(frozen=True)
class _Run:
    """What every table of one run shares."""

    run_id: str
    version: int
    position: ChangePosition | None
    deletion_vectors: bool

    def transactions(self) -> list[dict[str, Any]]:
        actions = [{"txn": {"appId": APP_ID, "version": self.version, "lastUpdated": log.now_ms()}}]
        if self.position is not None:
            app_id = CHANGES_APP_PREFIX + self.position.epoch
            actions.append(
                {
                    "txn": {
                        "appId": app_id,
                        "version": self.position.version,
                        "lastUpdated": log.now_ms(),
                    }
                }
            )
        return actions

    def commit_info(self, operation: str) -> dict[str, Any]:
        return {
            "commitInfo": {
                "timestamp": log.now_ms(),
                "operation": operation,
                "operationParameters": {},
                "engineInfo": "industrydata",
                RUN_ID_KEY: self.run_id,
            }
        }


def delta_schema(table: CanonicalTable) -> pa.Schema:
    """The data files' schema: ``arrow_schema`` with microsecond timestamps, Delta's unit."""
    return pa.schema(
        [
            pa.field(item.name, pa.timestamp("us", tz="UTC"))
            if pa.types.is_timestamp(item.type)
            else item
            for item in arrow_schema(table)
        ]
    )


class _TableWriter:
    """One table's commit of one run."""

    def __init__(
        self, destination: Destination, table: CanonicalTable, source: ChangeSource, run: _Run
    ) -> None:
        self.destination = destination
        self.table = table
        self.folder = table.name
        self.source = source
        self.run = run
        self.schema = delta_schema(table)

    def write(self) -> tuple[TableResult, int, bool]:
        """The table's result, its version after the run, and whether this run committed."""
        state = log.read_state(self.destination, self.folder)
        if state is not None:
            if state.transactions.get(APP_ID, -1) >= self.run.version:
                return TableResult(self.table.name, 0, 0, 0, 0), state.version, False
            self._check_writable(state)
        locators = set(self.destination.list(f"{self.folder}/{LOCATOR_FOLDER}"))
        since = self._continues_from(state, locators)
        new_files = _NewFiles(self.destination, self.folder, self.table, self.schema)
        with new_files:
            if since is None:
                rows_read, changes, actions = self._replace_all(state, new_files)
                operation = "WRITE"
            else:
                assert state is not None
                rows_read, changes, actions = self._apply_changes(state, since, new_files)
                operation = "MERGE"
        adds = new_files.added
        actions += [{"add": add} for add in adds]
        version = 0 if state is None else state.version + 1
        log.commit(
            self.destination,
            self.folder,
            version,
            [
                self.run.commit_info(operation),
                *self._table_actions(state),
                *actions,
                *self.run.transactions(),
            ],
        )
        self._drop_stale_locators(state, actions, locators)
        files = len(adds) + (1 if new_files.deletion_vectors_written else 0)
        size = sum(int(add["size"]) for add in adds) + new_files.deletion_vectors_written
        return TableResult(self.table.name, rows_read, changes, files, size), version, True

    def _check_writable(self, state: log.TableState) -> None:
        """Refuse a table this writer must not change: unknown features, other columns."""
        if unsupported := log.unsupported_features(state.protocol):
            raise ExportError(
                f"The Delta table {self.table.name} uses features this writer cannot honour "
                f"({', '.join(sorted(unsupported))}); move it away to have it written again.",
                target=self.table.name,
            )
        if _fields(state.metadata.get("schemaString")) != _fields(log.schema_string(self.schema)):
            raise ExportError(
                f"The Delta table {self.table.name} has other columns than the canonical "
                "table; move it away to have it written again.",
                target=self.table.name,
            )

    def _continues_from(self, state: log.TableState | None, locators: set[str]) -> int | None:
        """The store change version the table reflects, when the run can continue from it."""
        position = self.run.position
        if state is None or position is None:
            return None
        since = state.transactions.get(CHANGES_APP_PREFIX + position.epoch)
        if since is None or since > position.version:
            return None
        if state.metadata.get("partitionColumns"):
            return None
        if any(_locator(self.folder, path) not in locators for path in state.files):
            return None
        return since

    def _table_actions(self, state: log.TableState | None) -> list[dict[str, Any]]:
        """Protocol and metadata actions, when the table needs new ones."""
        current_protocol = state.protocol if state else {}
        current_metadata = state.metadata if state else {}
        protocol = log.protocol_action(
            deletion_vectors=self.run.deletion_vectors, current=current_protocol
        )
        configuration = {"delta.enableChangeDataFeed": "true"}
        if "deletionVectors" in protocol.get("writerFeatures", ()):
            configuration["delta.enableDeletionVectors"] = "true"
        metadata = log.metadata_action(self.schema, configuration, current=current_metadata)
        actions = []
        if protocol != _sorted_features(current_protocol):
            actions.append({"protocol": protocol})
        if any(
            metadata[key] != current_metadata.get(key)
            for key in ("schemaString", "configuration", "partitionColumns")
        ):
            actions.append({"metaData": metadata})
        return actions

    def _replace_all(
        self, state: log.TableState | None, new_files: _NewFiles
    ) -> tuple[int, int, list[dict[str, Any]]]:
        rows = new_files.write_source(self.source.rows(self.table))
        removes = [{"remove": _remove(add)} for add in state.files.values()] if state else []
        return rows, rows, removes

    def _apply_changes(
        self, state: log.TableState, since: int, new_files: _NewFiles
    ) -> tuple[int, int, list[dict[str, Any]]]:
        new_files.remember_rows = True
        changed = new_files.write_source(self.source.changed_rows(self.table, since))
        removed = self.source.removed_rows(self.table, since)
        targets = np.unique(
            np.concatenate([*new_files.row_numbers_written, removed.cast(pa.int64()).to_numpy()])
        )
        actions: list[dict[str, Any]] = []
        if len(targets):
            for path, add in state.files.items():
                actions += self._delete_rows(path, add, targets, new_files)
        return changed, changed + len(removed), actions

    def _delete_rows(
        self, path: str, add: dict[str, Any], targets: np.ndarray, new_files: _NewFiles
    ) -> list[dict[str, Any]]:
        """Actions deleting the rows of one data file whose row numbers are in ``targets``
        (sorted, unique)."""
        numbers = _read_row_numbers(self.destination, _locator(self.folder, path))
        hits = _members(numbers, targets)
        if not hits.any():
            return []
        deleted = np.zeros(len(numbers), dtype=bool)
        if add.get("deletionVector"):
            before = read_deletion_vector(
                add["deletionVector"],
                lambda name: self.destination.read_bytes(f"{self.folder}/{name}"),
            )
            deleted[np.fromiter(before, dtype=np.int64, count=len(before))] = True
        now_deleted = deleted | hits
        if now_deleted.sum() == deleted.sum():
            return []
        actions: list[dict[str, Any]] = [{"remove": _remove(add)}]
        if now_deleted.all():
            return actions
        if not self.run.deletion_vectors or now_deleted.sum() > REWRITE_FRACTION * len(numbers):
            self._rewrite(path, ~now_deleted, numbers, new_files)
        else:
            descriptor = new_files.deletion_vectors.add(BitMap64(np.flatnonzero(now_deleted)))
            actions.append({"add": {**add, "deletionVector": descriptor, "dataChange": True}})
        return actions

    def _rewrite(
        self, path: str, keep: np.ndarray, numbers: np.ndarray, new_files: _NewFiles
    ) -> None:
        """Copy the rows of a data file that ``keep`` marks into the run's new files, one
        batch at a time (a file of a million rows decoded and filtered whole took 900 MiB)."""
        data = pq.ParquetFile(pa.BufferReader(self.destination.read_bytes(f"{self.folder}/{path}")))
        offset = 0
        for batch in data.iter_batches(batch_size=REWRITE_BATCH_ROWS):
            kept = keep[offset : offset + batch.num_rows]
            rows = numbers[offset : offset + batch.num_rows][kept]
            offset += batch.num_rows
            if len(rows):
                new_files.write([batch.filter(pa.array(kept)).cast(self.schema)], rows)

    def _drop_stale_locators(
        self, state: log.TableState | None, actions: list[dict[str, Any]], listed: set[str]
    ) -> None:
        """Delete the locators no live file needs (removed files, killed runs), best effort."""
        live = set(state.files) if state else set()
        for action in actions:
            if "remove" in action:
                live.discard(action["remove"]["path"])
            if "add" in action:
                live.add(action["add"]["path"])
        for locator in listed - {_locator(self.folder, path) for path in live}:
            with suppress(IndustryDataError):
                self.destination.delete(locator)


class _NewFiles:
    """The data files a run adds to one table, each with its locator, and the run's deletion
    vector file; rolled over every ``MAX_FILE_ROWS`` rows. Used as a context manager: on
    leaving without an exception every file is complete; with one, the open file is
    discarded."""

    def __init__(
        self, destination: Destination, folder: str, table: CanonicalTable, schema: pa.Schema
    ) -> None:
        self.destination = destination
        self.folder = folder
        self.table = table
        self.schema = schema
        self.added: list[dict[str, Any]] = []
        self.row_numbers_written: list[np.ndarray] = []
        """The row numbers of the rows written from the source, when ``remember_rows``."""
        self.remember_rows = False
        self.deletion_vectors = DeletionVectorFile()
        self.deletion_vectors_written = 0
        self._file: _OpenFile | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            if error is not None:
                file.discard(error)
                return
            self.added.append(file.finish())
        if error is None and len(self.deletion_vectors.content) > 1:
            content = self.deletion_vectors.content
            self.destination.write_bytes(f"{self.folder}/{self.deletion_vectors.name}", content)
            self.deletion_vectors_written = len(content)

    def write_source(self, batches: Iterable[pa.RecordBatch]) -> int:
        """Write the source's batches (table columns and a trailing ``RowNumber``)."""
        rows = 0
        for batch in batches:
            # A copy: a view would keep the driver's whole batch alive (an imported batch
            # is freed as one), and with it every column read so far.
            numbers = batch.column(ROW_NUMBER).to_numpy(zero_copy_only=False).astype(np.int64)
            if self.remember_rows:
                self.row_numbers_written.append(numbers)
            data = conform_batch(batch, self.table)
            self.write([data.cast(self.schema)], numbers)
            rows += batch.num_rows
        return rows

    def write(self, batches: list[pa.RecordBatch], numbers: np.ndarray) -> None:
        """Write rows, ``numbers`` being their row numbers in order."""
        offset = 0
        for batch in batches:
            while batch.num_rows:
                if self._file is None:
                    self._file = _OpenFile(self.destination, self.folder, self.schema)
                room = MAX_FILE_ROWS - self._file.rows
                part, batch = batch.slice(0, room), batch.slice(room)
                self._file.write(part, numbers[offset : offset + part.num_rows])
                offset += part.num_rows
                if self._file.rows >= MAX_FILE_ROWS:
                    self.added.append(self._file.finish())
                    self._file = None


class _OpenFile:
    """A data file being streamed to the destination, and its row numbers so far."""

    def __init__(self, destination: Destination, folder: str, schema: pa.Schema) -> None:
        self.destination = destination
        self.folder = folder
        self.name = f"part-00000-{uuid.uuid4()}-c000.zstd.parquet"
        self.rows = 0
        self._numbers: list[np.ndarray] = []
        self._stack = ExitStack()
        stream: BinaryIO = self._stack.enter_context(
            destination.open_writer(f"{folder}/{self.name}")
        )
        self._sink = pa.PythonFile(stream, mode="w")
        self._writer = pq.ParquetWriter(self._sink, schema, compression=_COMPRESSION)

    def write(self, batch: pa.RecordBatch, numbers: np.ndarray) -> None:
        self._writer.write_batch(batch)
        self._numbers.append(numbers)
        self.rows += batch.num_rows

    def finish(self) -> dict[str, Any]:
        """Complete the data file and its locator; return the file's ``add`` action."""
        self._writer.close()
        size = self._sink.tell()
        self._stack.close()
        numbers = pa.table(
            [pa.array(np.concatenate(self._numbers), pa.int64())],
            schema=_ROW_NUMBERS_SCHEMA,
        )
        with self.destination.open_writer(_locator(self.folder, self.name)) as stream:
            pq.write_table(
                numbers,
                pa.PythonFile(stream, mode="w"),
                compression=_COMPRESSION,
                use_dictionary=False,
                column_encoding={ROW_NUMBER: "DELTA_BINARY_PACKED"},
            )
        return {
            "path": self.name,
            "partitionValues": {},
            "size": size,
            "modificationTime": log.now_ms(),
            "dataChange": True,
            "stats": log.file_statistics(self._writer.writer.metadata),
        }

    def discard(self, error: BaseException) -> None:
        with suppress(Exception):
            self._writer.close()
        self._stack.__exit__(type(error), error, error.__traceback__)


def _remove(add: dict[str, Any]) -> dict[str, Any]:
    remove = {
        "path": add["path"],
        "deletionTimestamp": log.now_ms(),
        "dataChange": True,
        "extendedFileMetadata": True,
        "partitionValues": add.get("partitionValues") or {},
        "size": add.get("size"),
    }
    if add.get("deletionVector"):
        remove["deletionVector"] = add["deletionVector"]
    return remove


def _locator(folder: str, data_path: str) -> str:
    return f"{folder}/{LOCATOR_FOLDER}/{data_path}"


def _read_row_numbers(destination: Destination, path: str) -> np.ndarray:
    table = pq.read_table(pa.BufferReader(destination.read_bytes(path)))
    return table.column(ROW_NUMBER).to_numpy()


def _members(numbers: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Which of ``numbers`` are in ``targets`` (sorted, unique), as a boolean mask.

    A locator written in row-number order (a SQLite table holding one tenant is read in
    that order) is searched from the targets' side, in time that follows the change's size;
    any other goes through a hash lookup of every number.
    """
    if len(numbers) > 1 and not (numbers[1:] > numbers[:-1]).all():
        return pc.is_in(numbers, value_set=pa.array(targets)).to_numpy(zero_copy_only=False)
    hits = np.zeros(len(numbers), dtype=bool)
    found = np.searchsorted(numbers, targets)
    inside = found < len(numbers)
    found, wanted = found[inside], targets[inside]
    hits[found[numbers[found] == wanted]] = True
    return hits


def _sorted_features(protocol: dict[str, Any]) -> dict[str, Any]:
    return {
        key: sorted(value) if key.endswith("Features") else value for key, value in protocol.items()
    }


def _fields(schema_string: str | None) -> list[tuple[str, str]]:
    if not schema_string:
        return []
    return [(item["name"], item["type"]) for item in json.loads(schema_string)["fields"]]
