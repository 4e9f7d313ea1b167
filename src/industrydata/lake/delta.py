"""The ``delta`` writer: one Delta Lake table per canonical table, changed incrementally.

``<destination>/<Table>/`` is a Delta table whose columns are the table's ``arrow_schema``
(the CDM names; Delta ``string``, ``timestamp``, ``boolean`` and ``integer``), zstd Parquet
data files of at most ``MAX_FILE_ROWS`` rows in one row group each, no partitions, the Change
Data Feed on. Every run makes exactly one commit per table, which carries:

* the app transaction ``industrydata.<flow id>`` whose version is the run's start in epoch
  milliseconds (a table already at or past it, or at or past the ``industrydata`` one that
  all flows shared before, is left alone: a retried run commits nothing twice and a stale
  run never overwrites a newer one, the ``txnAppId``/``txnVersion`` rule of Spark's
  idempotent writes), and the run id under ``industrydata.runId`` in its commit info;
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

A commit that changes rows already in the table also writes a **change data file**,
``_change_data/cdc-…parquet`` (the table's columns and ``_change_type``), named by a ``cdc``
action; Change Data Feed readers then take that version's changes from it alone. It holds an
updated row's ``update_preimage`` and ``update_postimage``, a removed row's ``delete`` and a
new row's ``insert``; rows a rewrite only moves are not in it. The old values are read from
the data files that held the changed rows, the new ones from the store a second time. A
commit that only inserts writes none (readers take the rows of its added files as inserts),
nor does a full replacement: like Spark's overwrite, it reads as the delete of every live
old row and the insert of every new one.

Statistics: a file written whole has exact ones (``tightBounds: true``); a file re-added
with a deletion vector keeps them as wide bounds (``tightBounds: false``, ``numRecords``
still its physical row count), as the protocol allows.

Tables someone else changed (``_delta_log`` has the protocol rules): the writer keeps every
configuration key but the two it owns (``delta.enableChangeDataFeed``, and
``delta.enableDeletionVectors`` when it writes deletion vectors), the schema string and
every other metadata field, every protocol feature and version. It refuses, with an
``ExportError`` naming the table and committing nothing, a table with a feature it does not
implement (column mapping, generated or identity columns in use; any unknown feature; a
protocol past reader 3 / writer 7), a run that must update or delete rows of an
append-only table (``delta.appendOnly=true``: a run that only inserts proceeds), and a run
that adds rows to a table with rules on rows it does not evaluate (CHECK constraints
``delta.constraints.*``, column invariants, NOT NULL columns; a run that only deletes
proceeds).

Commit races follow the protocol's optimistic concurrency: a commit whose version another
writer created first is tried again at the next version, up to ``COMMIT_ATTEMPTS`` times,
and built again from the new state when the winner touched what it relies on (see
``_TableWriter.write``); a version holding exactly the bytes this run sent is its own (a
request retried after a lost response). Other tables are written whatever happens.

Each commit is atomic, so a reader sees every table at its version before or after the run,
never half a change. Files no commit names are left by failed and killed attempts. Each
attempt names the files it writes (data, deletion vector, change data, locator), before
writing them, in a pending record (``_industrydata/pending/<attempt>.json``: run id, app id,
run version, start), removed once its commit is made, so what it leaves is provably the
writer's own. An attempt that fails before committing deletes its files at once; a later run
deletes those a killed attempt left, once its record is stale (an earlier run of the same
flow, which can no longer commit; or older than the table's ``delta.logRetentionDuration``,
30 days by default), and then only the files that no commit or checkpoint still in the log
names; and it deletes the locators no live file needs. Data, deletion vector and change data
files of killed runs from before pending records, and files of removed rows, are the
consumer's VACUUM's: Spark's removes untracked files and tombstoned ones past
``delta.deletedFileRetentionDuration`` (7 days by default); deltalake's default VACUUM
removes tombstoned data files only, and its ``full`` mode also deletes live deletion vector
files (deltalake 1.6.6), which breaks tables that have them. The writer never vacuums: that
would cut the consumer's time travel.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, suppress
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
    "CHANGE_DATA_FOLDER",
    "CHANGE_TYPE",
    "COMMIT_ATTEMPTS",
    "LOCATOR_FOLDER",
    "PENDING_FOLDER",
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
PRIVATE_FOLDER = "_industrydata"
"""The writer's own objects in a table folder, hidden from Delta readers and VACUUM."""
LOCATOR_FOLDER = f"{PRIVATE_FOLDER}/row-numbers"
PENDING_FOLDER = f"{PRIVATE_FOLDER}/pending"
"""One record per commit attempt naming the files it writes, until it commits or gives up."""
COMMIT_ATTEMPTS = 5
"""How many times a table's commit is tried against other writers' commits."""
CHANGE_DATA_FOLDER = "_change_data"
CHANGE_TYPE = "_change_type"
"""The column of change data files that says what each row is: one of these four."""
INSERT, DELETE, UPDATE_PREIMAGE, UPDATE_POSTIMAGE = (
    "insert",
    "delete",
    "update_preimage",
    "update_postimage",
)
MAX_FILE_ROWS = 1 << 19
"""Rows per data file (one row group), gathered in memory until the file is written: 2^19
rows of the widest large table (Enrollment) take about 200 MiB of a run's peak RSS, 2^20
twice that."""
_BATCH_ROWS = 1 << 16
"""Rows per batch read back from a data file, and the least a change data row group holds."""
REWRITE_FRACTION = 0.5
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
    change_data_feed: bool = True,
    flow_id: str | None = None,
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
        change_data_feed: write the Change Data Feed (``delta.enableChangeDataFeed``): a
            commit that changes rows already in the table writes their old and new values
            to a change data file, which costs a read of the data files that held them.
        flow_id: the flow the run belongs to: its app transaction is
            ``industrydata.<flow id>`` (``APP_ID`` alone without one).
        on_table_done: called after each table's commit.

    Returns:
        The snapshot id is the highest table version after the run. Tables are created
        together and each run commits to every one, so it is every table's version unless a
        run was killed between two tables.

    Raises:
        InvalidDestination: the destination cannot hold Delta tables.
        ExportError, DestinationUnreachable: the destination failed, a table uses Delta
            features this writer cannot honour or forbids the change (append-only, CHECK
            constraints), or other writers won the commit race ``COMMIT_ATTEMPTS`` times;
            tables already committed by this run stay committed, the others keep their
            previous version.
    """
    destination.delta_location()  # a destination that cannot hold Delta tables says so here
    run = _Run(
        run_id=run_id,
        app_id=f"{APP_ID}.{flow_id}" if flow_id else APP_ID,
        version=transaction_version(run_time),
        position=source.position,
        deletion_vectors=deletion_vectors,
        change_data_feed=change_data_feed,
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
    app_id: str
    """The app id of the run-version transaction: ``industrydata.<flow id>``."""
    version: int
    position: ChangePosition | None
    deletion_vectors: bool
    change_data_feed: bool

    def reached(self, state: log.TableState | None) -> bool:
        """Whether the table is already at or past this run: by this flow's transaction, or
        by the ``industrydata`` one every flow wrote before they had their own."""
        if state is None:
            return False
        versions = state.transactions
        return max(versions.get(self.app_id, -1), versions.get(APP_ID, -1)) >= self.version

    def owns(self, app_id: str) -> bool:
        """Whether a transaction's app id is one of the writer's (run or change versions)."""
        return app_id in (self.app_id, APP_ID) or app_id.startswith(CHANGES_APP_PREFIX)

    def transactions(self) -> list[dict[str, Any]]:
        actions = [
            {"txn": {"appId": self.app_id, "version": self.version, "lastUpdated": log.now_ms()}}
        ]
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
        self._locators_prefix = f"{self.folder}/{LOCATOR_FOLDER}/"
        self._pending_prefix = f"{self.folder}/{PENDING_FOLDER}/"

    def write(self) -> tuple[TableResult, int, bool]:
        """The table's result, its version after the run, and whether this run committed.

        Optimistic concurrency, as the protocol has it: the commit is built against the
        state read, and when another writer commits that version first the log is read
        again. A winner that touched what this commit relies on (the protocol, the metadata,
        the writer's transactions, files this commit removes or re-adds, or any file when
        this commit replaces them all) makes the run build its commit again from the new
        state; otherwise the same commit is tried at the next version.
        """
        state = log.read_state(self.destination, self.folder)
        draft: _Draft | None = None
        sent = False  # a commit request is out: its files must stay (a later run sweeps them)
        try:
            for _ in range(COMMIT_ATTEMPTS):
                if self.run.reached(state):
                    if draft is not None:
                        draft.files.discard()
                    version = state.version if state is not None else -1
                    return TableResult(self.table.name, 0, 0, 0, 0), version, False
                if draft is None:
                    self._check_writable(state)
                    draft = self._draft(state)
                version = 0 if state is None else state.version + 1
                entry = [
                    self.run.commit_info(draft.operation),
                    *self._table_actions(state),
                    *draft.actions,
                    *self.run.transactions(),
                ]
                sent = True
                if log.commit(self.destination, self.folder, version, entry):
                    draft.files.committed()
                    self._after_commit(state, draft)
                    return draft.result(self.table.name), version, True
                sent = False
                newer = log.read_state(self.destination, self.folder)
                if self._conflicts(state, newer, draft):
                    draft.files.discard()
                    draft = None
                state = newer
        except BaseException:
            if draft is not None and not sent:
                draft.files.discard()
            raise
        if draft is not None:
            draft.files.discard()
        raise ExportError(
            f"Other writers committed to the Delta table {self.table.name} before this run "
            f"{COMMIT_ATTEMPTS} times; the next run continues from their state.",
            target=self.table.name,
        )

    def _draft(self, state: log.TableState | None) -> _Draft:
        """Write the run's files for ``state`` and the actions that commit them.

        Raises:
            ExportError: the table forbids the change (append-only, rules on rows);
                nothing of it is left.
        """
        files = _AttemptFiles(self.destination, self.folder, self.run)
        try:
            private = self.destination.list(f"{self.folder}/{PRIVATE_FOLDER}")
            locators = {path for path in private if path.startswith(self._locators_prefix)}
            pending = [path for path in private if path.startswith(self._pending_prefix)]
            since = self._continues_from(state, locators)
            new_files = _NewFiles(files, self.folder, self.table, self.schema)
            with new_files:
                if since is None:
                    rows_read, changes, actions = self._replace_all(state, new_files)
                    operation = "WRITE"
                else:
                    assert state is not None
                    rows_read, changes, actions = self._apply_changes(state, since, new_files)
                    operation = "MERGE"
            actions = [_widened(action, state) for action in actions]
            actions += [{"add": add} for add in new_files.added]
            draft = _Draft(
                operation=operation,
                actions=actions,
                files=files,
                locators=locators,
                pending=pending,
                rows_read=rows_read,
                changes=changes,
                added=new_files.added,
                deletion_vector_bytes=new_files.deletion_vectors_written,
                replaces_all=since is None,
            )
            self._check_commit(state, draft)
        except BaseException:
            files.discard()
            raise
        return draft

    def _check_writable(self, state: log.TableState | None) -> None:
        """Refuse a table this writer must not change: features it cannot honour, other
        columns."""
        if state is None:
            return
        if unsupported := log.unsupported_features(state.protocol, state.metadata):
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

    def _check_commit(self, state: log.TableState | None, draft: _Draft) -> None:
        """Refuse a commit the table forbids: changing or removing rows of an append-only
        table; adding rows to a table with rules on rows (CHECK constraints, invariants,
        NOT NULL columns), which this writer does not evaluate."""
        if state is None:
            return
        if log.append_only(state.protocol, state.metadata) and any(
            "remove" in action and action["remove"]["dataChange"] for action in draft.actions
        ):
            raise ExportError(
                f"The Delta table {self.table.name} is append-only (delta.appendOnly=true) and "
                "this run must update or delete rows in it; nothing was committed. Set "
                "delta.appendOnly to false, or move the table away to have it written again.",
                target=self.table.name,
            )
        rules = log.row_rules(state.protocol, state.metadata)
        if rules and any(
            "add" in action and action["add"]["path"] not in state.files
            for action in draft.actions
        ):
            raise ExportError(
                f"The Delta table {self.table.name} has rules on its rows that this writer "
                f"does not evaluate ({', '.join(rules)}) and this run must add rows to it; "
                "nothing was committed. Drop the rules, or move the table away to have it "
                "written again.",
                target=self.table.name,
            )

    def _conflicts(
        self, state: log.TableState | None, newer: log.TableState | None, draft: _Draft
    ) -> bool:
        """Whether the commits made since ``state`` touched what ``draft`` relies on."""
        if state is None or newer is None:
            return True
        touched = {
            action[kind]["path"]
            for action in draft.actions
            for kind in ("add", "remove")
            if kind in action and action[kind]["path"] in state.files
        }
        for version in range(state.version + 1, newer.version + 1):
            try:
                actions = log.read_commit(self.destination, self.folder, version)
            except IndustryDataError:  # cleaned up already: assume the worst
                return True
            for action in actions:
                if "protocol" in action or "metaData" in action:
                    return True
                if "txn" in action and self.run.owns(action["txn"]["appId"]):
                    return True
                for kind in ("add", "remove"):
                    if kind in action and (
                        draft.replaces_all or action[kind]["path"] in touched
                    ):
                        return True
        return False

    def _after_commit(self, state: log.TableState | None, draft: _Draft) -> None:
        """Best effort, once committed on ``state``: delete the locators no live file needs
        (removed files, killed runs), and the files of attempts that provably never
        committed (``_AttemptFiles.sweep``)."""
        live = set(state.files) if state else set()
        for action in draft.actions:
            if "remove" in action:
                live.discard(action["remove"]["path"])
            if "add" in action:
                live.add(action["add"]["path"])
        for locator in draft.locators - {_locator(self.folder, path) for path in live}:
            with suppress(IndustryDataError):
                self.destination.delete(locator)
        if draft.pending and state is not None:
            with suppress(IndustryDataError, ValueError, KeyError, TypeError):
                draft.files.sweep(draft.pending, state.metadata)

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
        """Protocol and metadata actions, when the table needs new ones: the writer's
        features and configuration keys added, everything else of the table kept."""
        current_protocol = state.protocol if state else {}
        current_metadata = state.metadata if state else {}
        protocol = log.protocol_action(
            deletion_vectors=self.run.deletion_vectors, current=current_protocol
        )
        metadata = log.metadata_action(
            self.schema, self._configuration(), current=current_metadata
        )
        actions = []
        if protocol != _sorted_features(current_protocol):
            actions.append({"protocol": protocol})
        if any(
            metadata[key] != current_metadata.get(key)
            for key in ("schemaString", "configuration", "partitionColumns")
        ):
            actions.append({"metaData": metadata})
        return actions

    def _configuration(self) -> dict[str, str]:
        """The configuration keys the writer owns; the table's other keys are kept."""
        configuration = {"delta.enableChangeDataFeed": str(self.run.change_data_feed).lower()}
        if self.run.deletion_vectors:
            configuration["delta.enableDeletionVectors"] = "true"
        return configuration

    def _replace_all(
        self, state: log.TableState | None, new_files: _NewFiles
    ) -> tuple[int, int, list[dict[str, Any]]]:
        """Every row written anew, every live file removed. No change data file: like
        Spark's overwrite, the Change Data Feed reads the removed files' live rows as
        deleted and the added files' rows as inserted."""
        rows = 0
        for data, numbers in self._source_batches(self.source.rows(self.table)):
            new_files.write(data, numbers)
            rows += data.num_rows
        removes = [{"remove": _remove(add)} for add in state.files.values()] if state else []
        return rows, rows, removes

    def _apply_changes(
        self, state: log.TableState, since: int, new_files: _NewFiles
    ) -> tuple[int, int, list[dict[str, Any]]]:
        """The changed rows appended, their old copies and the removed rows deleted; when
        that changes rows already in the table, a change data file of every change."""
        removed = np.unique(
            self.source.removed_rows(self.table, since)
            .cast(pa.int64())
            .to_numpy(zero_copy_only=False)
        )
        written: list[np.ndarray] = []
        for data, numbers in self._source_batches(self.source.changed_rows(self.table, since)):
            new_files.write(data, numbers)
            written.append(numbers)
        changed = sum(len(numbers) for numbers in written)
        targets = np.unique(np.concatenate([*written, removed]))
        del written
        actions: list[dict[str, Any]] = []
        with ExitStack() as stack:
            change_data = None
            if self.run.change_data_feed:
                change_data = stack.enter_context(
                    _ChangeData(new_files.destination, self.folder, self.schema, removed)
                )
            if len(targets):
                for path, add in state.files.items():
                    actions += self._delete_rows(path, add, targets, new_files, change_data)
            if change_data is not None and change_data.rows:
                # With a change data file readers take the version's changes from it
                # alone, so the new rows go in too: the store is read again rather than
                # holding them since the first read.
                for data, numbers in self._source_batches(
                    self.source.changed_rows(self.table, since)
                ):
                    change_data.new_rows(data, numbers)
        if change_data is not None:
            actions += change_data.actions
        return changed, changed + len(removed), actions

    def _delete_rows(
        self,
        path: str,
        add: dict[str, Any],
        targets: np.ndarray,
        new_files: _NewFiles,
        change_data: _ChangeData | None,
    ) -> list[dict[str, Any]]:
        """Actions deleting the live rows of one data file whose row numbers are in
        ``targets`` (sorted, unique); the deleted rows go to ``change_data`` (the file is
        read only for it or for a rewrite)."""
        numbers = _read_row_numbers(self.destination, _locator(self.folder, path))
        deleted = np.zeros(len(numbers), dtype=bool)
        if add.get("deletionVector"):
            before = read_deletion_vector(
                add["deletionVector"],
                lambda name: self.destination.read_bytes(f"{self.folder}/{name}"),
            )
            deleted[np.fromiter(before, dtype=np.int64, count=len(before))] = True
        hits = _members(numbers, targets) & ~deleted
        if not hits.any():
            return []
        now_deleted = deleted | hits
        rewrite = not now_deleted.all() and (
            not self.run.deletion_vectors or now_deleted.sum() > REWRITE_FRACTION * len(numbers)
        )
        start = 0
        batches: Iterable[pa.RecordBatch] = ()
        if rewrite or change_data is not None:
            batches = _read_data_file(self.destination, f"{self.folder}/{path}", self.schema)
        for batch in batches:
            end = start + batch.num_rows
            hit, batch_numbers = hits[start:end], numbers[start:end]
            if change_data is not None and hit.any():
                change_data.old_rows(batch.filter(hit), batch_numbers[hit])
            if rewrite:
                keep = ~now_deleted[start:end]
                new_files.write(batch.filter(keep), batch_numbers[keep])
            start = end
        actions: list[dict[str, Any]] = [{"remove": _remove(add)}]
        if not (rewrite or now_deleted.all()):
            descriptor = new_files.deletion_vectors.add(BitMap64(np.flatnonzero(now_deleted)))
            actions.append({"add": {**add, "deletionVector": descriptor, "dataChange": True}})
        return actions

    def _source_batches(
        self, batches: Iterable[pa.RecordBatch]
    ) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        """The source's batches as data file rows, each with its rows' row numbers."""
        for batch in batches:
            # A copy: a view would keep the driver's whole batch alive (an imported batch
            # is freed as one), and with it every column read so far.
            numbers = batch.column(ROW_NUMBER).to_numpy(zero_copy_only=False).astype(np.int64)
            yield conform_batch(batch, self.table).cast(self.schema), numbers

@dataclass
class _Draft:
    """One table's commit being built: its actions and the files written for them."""

    operation: str
    actions: list[dict[str, Any]]
    """The data actions: removes, re-adds with deletion vectors, new files."""
    files: _AttemptFiles
    locators: set[str]
    """The table's locators when the draft was made."""
    pending: list[str]
    """The pending records of other attempts when the draft was made."""
    rows_read: int
    changes: int
    added: list[dict[str, Any]]
    deletion_vector_bytes: int
    replaces_all: bool

    def result(self, name: str) -> TableResult:
        written = self.added + [action["cdc"] for action in self.actions if "cdc" in action]
        files = len(written) + (1 if self.deletion_vector_bytes else 0)
        size = sum(int(file["size"]) for file in written) + self.deletion_vector_bytes
        return TableResult(name, self.rows_read, self.changes, files, size)


class _AttemptFiles(Destination):
    """The destination as one commit attempt writes to a table: before creating a data,
    deletion vector or change data file it names it in the attempt's pending record,
    ``_industrydata/pending/<attempt id>.json`` (with the run id, app id, run version and
    start), which is deleted once the commit is made. So whatever a failed or killed
    attempt leaves is provably the writer's own: ``discard`` deletes it at once (a failed
    attempt), ``sweep`` later (a killed one)."""

    def __init__(self, destination: Destination, folder: str, run: _Run) -> None:
        self.destination = destination
        self.folder = folder
        self.run = run
        self.record_path = f"{folder}/{PENDING_FOLDER}/{uuid.uuid4()}.json"
        self.started = log.now_ms()
        self.paths: list[str] = []
        """Table-relative paths of the files written, in order."""
        self.recorded = False

    def discard(self) -> None:
        """Delete every file written and the record, best effort: nothing commits them."""
        for path in self.paths:
            for name in (f"{self.folder}/{path}", _locator(self.folder, path)):
                with suppress(IndustryDataError):
                    self.destination.delete(name)
        self.paths = []
        self.committed()

    def committed(self) -> None:
        """Delete the record, best effort: a commit names the files now."""
        if self.recorded:
            with suppress(IndustryDataError):
                self.destination.delete(self.record_path)
            self.recorded = False

    def sweep(self, records: list[str], metadata: dict[str, Any]) -> None:
        """Delete what attempts of killed runs left: the files their pending records name
        that no commit still in the log names, once each record is stale: written by an
        earlier run of this flow (which can no longer commit, its transaction version being
        below the one this run committed) or older than the table's log retention."""
        retention = log.log_retention_ms(metadata)
        stale: list[dict[str, Any]] = []
        for path in records:
            record = json.loads(self.destination.read_bytes(path))
            earlier_run = record["appId"] == self.run.app_id and record["runVersion"] < (
                self.run.version
            )
            expired = retention is not None and log.now_ms() - record["started"] > retention
            if earlier_run or expired:
                stale.append({**record, "record": path})
        if not stale:
            return
        named = log.named_files(self.destination, self.folder)
        for record in stale:
            for file in record["files"]:
                if file not in named:
                    self.destination.delete(f"{self.folder}/{file}")
                    self.destination.delete(_locator(self.folder, file))
            self.destination.delete(record["record"])

    def _note(self, path: str) -> None:
        relative = path.removeprefix(f"{self.folder}/")
        if relative == path or relative.startswith((log.LOG_FOLDER + "/", PRIVATE_FOLDER + "/")):
            return
        self.paths.append(relative)
        record = {
            "runId": self.run.run_id,
            "appId": self.run.app_id,
            "runVersion": self.run.version,
            "started": self.started,
            "files": self.paths,
        }
        self.destination.write_bytes(self.record_path, json.dumps(record).encode())
        self.recorded = True

    def _open_writer(self, path: str) -> AbstractContextManager[BinaryIO]:
        self._note(path)
        return self.destination.open_writer(path)

    def _write_bytes(self, path: str, data: bytes) -> None:
        self._note(path)
        self.destination.write_bytes(path, data)

    def _create_new(self, path: str, data: bytes) -> bool:
        self._note(path)
        return self.destination.create_new(path, data)

    def _read_bytes(self, path: str) -> bytes:
        return self.destination.read_bytes(path)

    def _exists(self, path: str) -> bool:
        return self.destination.exists(path)

    def _list(self, prefix: str) -> list[str]:
        return self.destination.list(prefix)

    def _delete(self, path: str) -> None:
        self.destination.delete(path)


def _widened(action: dict[str, Any], state: log.TableState | None) -> dict[str, Any]:
    """A file of the table re-added with a deletion vector keeps its statistics as wide
    bounds (``tightBounds: false``); other actions as they are."""
    add = action.get("add")
    if add is None or not add.get("deletionVector") or state is None:
        return action
    if add["path"] not in state.files:
        return action
    return {"add": {**add, "stats": log.wide_statistics(add["stats"])}}


class _NewFiles:
    """The data files a run adds to one table, each with its locator, and the run's deletion
    vector file; rolled over every ``MAX_FILE_ROWS`` rows. Used as a context manager: on
    leaving without an exception every file is complete; with one, the open file is
    dropped."""

    def __init__(
        self, destination: Destination, folder: str, table: CanonicalTable, schema: pa.Schema
    ) -> None:
        self.destination = destination
        self.folder = folder
        self.table = table
        self.schema = schema
        self.added: list[dict[str, Any]] = []
        self.deletion_vectors = DeletionVectorFile()
        self.deletion_vectors_written = 0
        self._file: _OpenFile | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        file, self._file = self._file, None
        if error is not None:
            return
        if file is not None:
            self.added.append(file.finish())
        if len(self.deletion_vectors.content) > 1:
            content = self.deletion_vectors.content
            self.destination.write_bytes(f"{self.folder}/{self.deletion_vectors.name}", content)
            self.deletion_vectors_written = len(content)

    def write(self, batch: pa.RecordBatch, numbers: np.ndarray) -> None:
        """Write rows, ``numbers`` being their row numbers in order."""
        offset = 0
        while offset < batch.num_rows:
            if self._file is None:
                self._file = _OpenFile(self.destination, self.folder, self.schema)
            part = batch.slice(offset, MAX_FILE_ROWS - self._file.rows)
            self._file.write(part, numbers[offset : offset + part.num_rows])
            offset += part.num_rows
            if self._file.rows >= MAX_FILE_ROWS:
                self.added.append(self._file.finish())
                self._file = None


class _OpenFile:
    """A data file being gathered: its batches and row numbers are held until ``finish``
    writes the file as one row group (delta-rs's Change Data Feed reads a deletion vector
    only over a file of one row group, and large row groups help every reader), then its
    locator."""

    def __init__(self, destination: Destination, folder: str, schema: pa.Schema) -> None:
        self.destination = destination
        self.folder = folder
        self.schema = schema
        self.name = f"part-00000-{uuid.uuid4()}-c000.zstd.parquet"
        self.rows = 0
        self._batches: list[pa.RecordBatch] = []
        self._numbers: list[np.ndarray] = []

    def write(self, batch: pa.RecordBatch, numbers: np.ndarray) -> None:
        self._batches.append(batch)
        self._numbers.append(numbers)
        self.rows += batch.num_rows

    def finish(self) -> dict[str, Any]:
        """Write the data file and its locator; return the file's ``add`` action."""
        data = pa.Table.from_batches(self._batches, schema=self.schema)
        self._batches.clear()
        with self.destination.open_writer(f"{self.folder}/{self.name}") as stream:
            sink = pa.PythonFile(stream, mode="w")
            with pq.ParquetWriter(sink, self.schema, compression=_COMPRESSION) as writer:
                writer.write_table(data, row_group_size=data.num_rows)
            size = sink.tell()
        del data
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
            "stats": log.file_statistics(writer.writer.metadata),
        }


class _ChangeData:
    """The change data file of one commit (``_change_data/``, the Change Data Feed): the
    rows the commit changes, each with its ``_change_type``, streamed to the file in row
    groups of at least ``_BATCH_ROWS`` rows (but the last); none is written without rows.
    Used as a context manager: the file is complete on leaving without an exception,
    discarded with one."""

    def __init__(
        self, destination: Destination, folder: str, schema: pa.Schema, removed: np.ndarray
    ) -> None:
        self.destination = destination
        self.folder = folder
        self.schema = schema.append(pa.field(CHANGE_TYPE, pa.string(), nullable=False))
        self.path = f"{CHANGE_DATA_FOLDER}/cdc-00000-{uuid.uuid4()}.c000.zstd.parquet"
        self.rows = 0
        self.actions: list[dict[str, Any]] = []
        """The ``cdc`` action, once the file is complete."""
        self._removed = removed
        self._updated: list[np.ndarray] = []
        """The row numbers of the rows ``old_rows`` took as updated."""
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._stack = ExitStack()
        self._sink: pa.PythonFile | None = None
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if error is not None:
            self._discard(error)
        elif self.rows:
            try:
                self._finish()
            except BaseException as failure:
                self._discard(failure)
                raise

    def _finish(self) -> None:
        self._flush()
        assert self._writer is not None and self._sink is not None
        self._writer.close()
        size = self._sink.tell()
        self._stack.close()
        self.actions.append(
            {"cdc": {"path": self.path, "partitionValues": {}, "size": size, "dataChange": False}}
        )

    def _discard(self, error: BaseException) -> None:
        if self._writer is not None:
            with suppress(Exception):
                self._writer.close()
        self._stack.__exit__(type(error), error, error.__traceback__)

    def old_rows(self, batch: pa.RecordBatch, numbers: np.ndarray) -> None:
        """Rows the commit deletes from the table: ``delete`` for rows the store removed,
        ``update_preimage`` (the values before) for rows it changed."""
        removed = np.isin(numbers, self._removed)
        self._updated.append(numbers[~removed])
        self._write(batch, np.where(removed, DELETE, UPDATE_PREIMAGE))

    def new_rows(self, batch: pa.RecordBatch, numbers: np.ndarray) -> None:
        """Rows the commit writes from the store: ``update_postimage`` for rows that
        ``old_rows`` saw as changed, ``insert`` for the others."""
        if len(self._updated) > 1:
            self._updated = [np.concatenate(self._updated)]
        updated = np.isin(numbers, self._updated[0] if self._updated else [])
        self._write(batch, np.where(updated, UPDATE_POSTIMAGE, INSERT))

    def _write(self, batch: pa.RecordBatch, change_types: np.ndarray) -> None:
        if not batch.num_rows:
            return
        self._pending.append(
            pa.RecordBatch.from_arrays(
                [*batch.columns, pa.array(change_types, pa.string())], schema=self.schema
            )
        )
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= _BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            stream: BinaryIO = self._stack.enter_context(
                self.destination.open_writer(f"{self.folder}/{self.path}")
            )
            self._sink = pa.PythonFile(stream, mode="w")
            self._writer = pq.ParquetWriter(self._sink, self.schema, compression=_COMPRESSION)
        rows = pa.Table.from_batches(self._pending, schema=self.schema)
        self._writer.write_table(rows, row_group_size=rows.num_rows)
        self._pending.clear()
        self._pending_rows = 0


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


def _read_data_file(
    destination: Destination, path: str, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """A data file's rows in order, batch by batch, in ``schema``."""
    file = pq.ParquetFile(pa.BufferReader(destination.read_bytes(path)))
    for batch in file.iter_batches(batch_size=_BATCH_ROWS):
        yield batch.cast(schema)


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
