"""The ``delta`` writer: one Delta Lake table per canonical table, changed incrementally.

``<destination>/<Table>/`` is a Delta table (written with ``deltalake``) whose columns are the
table's ``arrow_schema``: the CDM names, as Delta ``string``, ``timestamp`` (UTC),
``boolean`` and ``integer``. Every run makes exactly one commit per table:

* the first commit creates the table with all its rows (an empty table too), with the Change
  Data Feed on, so consumers can read each run's row changes (``load_cdf``);
* later commits compare the store's rows with the table's current version in Arrow (a hash
  join on the natural key, then a null-aware comparison column by column) and MERGE only the
  rows added, changed and removed; a table without changes gets a commit without data.

Each commit carries the app transaction ``industrydata`` whose version is the run's start in
epoch milliseconds, and the run id under ``industrydata.runId`` in its commit info. A table
whose transaction version is already at or past the run's is left alone: a retried run
commits nothing twice, and a stale run never overwrites a newer one (the ``txnAppId`` /
``txnVersion`` rule of Spark's idempotent writes).

Each commit is atomic, so a reader sees every table at its version before or after the run,
never half a change. A killed run may leave data files no commit names; every Delta reader
ignores them, and VACUUM (run by the consumer, with the retention they choose) deletes them.
The writer never vacuums: that would cut the consumer's time travel and add commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import (
    CommitProperties,
    DeltaTable,
    Transaction,
    WriterProperties,
    write_deltalake,
)

from ..canonical.arrow import arrow_schema, conform_batch
from ..canonical.tables import CanonicalTable
from ..errors import ExportError
from ._storage_errors import storage_errors
from .destination import Destination
from .results import SnapshotResult, TableResult

__all__ = ["APP_ID", "RUN_ID_KEY", "transaction_version", "write_delta"]

APP_ID = "industrydata"
"""The app id of the Delta app transactions (``txn`` actions) the writer commits."""
RUN_ID_KEY = "industrydata.runId"
"""The commit info key that carries the run id."""
TABLE_CONFIGURATION = {"delta.enableChangeDataFeed": "true"}

_DELETE = "__industrydata_delete"
_SOURCE_ROW = "__industrydata_source_row"
_TARGET_ROW = "__industrydata_target_row"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


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
    tables: Iterable[tuple[CanonicalTable, Iterable[pa.RecordBatch]]],
    on_table_done: Callable[[TableResult], None] | None = None,
) -> SnapshotResult:
    """Bring each table's Delta table to the store's rows, one commit per table.

    Args:
        destination: where the tables live (``Destination.delta_location``).
        run_id: recorded in every commit (``RUN_ID_KEY``).
        run_time: the run's start; gives the commits' app transaction version, which makes a
            retry of the same run a no-op.
        tables: each canonical table with its rows as Arrow batches (converted to the
            table's Arrow schema if they are not in it); consumed one table at a time.
        on_table_done: called after each table's commit.

    Returns:
        The snapshot id is the highest table version after the run. Tables are created
        together and each run commits to every one, so it is every table's version unless a
        run was killed between two tables.

    Raises:
        InvalidDestination: the destination cannot hold Delta tables.
        ExportError, DestinationUnreachable: the destination failed; tables already
            committed by this run stay committed, the others keep their previous version.
    """
    root, storage_options = destination.delta_location()
    commit = _Commit(run_id=run_id, version=transaction_version(run_time))
    results: list[TableResult] = []
    versions: list[int] = []
    for table, batches in tables:
        with storage_errors("write", table.name):
            result, version = _write_table(
                destination, f"{root}/{table.name}", storage_options, table, batches, commit
            )
        results.append(result)
        versions.append(version)
        if on_table_done is not None:
            on_table_done(result)
    return SnapshotResult(snapshot_id=str(max(versions)) if versions else "", tables=tuple(results))


@dataclass(frozen=True)
class _Commit:
    """What every commit of one run carries."""

    run_id: str
    version: int

    def properties(self) -> CommitProperties:
        return CommitProperties(
            custom_metadata={RUN_ID_KEY: self.run_id},
            app_transactions=[Transaction(app_id=APP_ID, version=self.version)],
        )


@dataclass(frozen=True)
class _Changes:
    """How the store's rows differ from a Delta table's: rows to upsert, keys to delete."""

    upserts: pa.Table
    deletions: pa.Table

    @property
    def rows(self) -> int:
        return self.upserts.num_rows + self.deletions.num_rows


def _write_table(
    destination: Destination,
    uri: str,
    storage_options: dict[str, str],
    table: CanonicalTable,
    batches: Iterable[pa.RecordBatch],
    commit: _Commit,
) -> tuple[TableResult, int]:
    schema = arrow_schema(table)
    writer_properties = WriterProperties(compression="ZSTD")
    if not DeltaTable.is_deltatable(uri, storage_options=storage_options):
        source = _read(batches, table)
        write_deltalake(
            uri,
            source,
            mode="error",
            configuration=TABLE_CONFIGURATION,
            storage_options=storage_options,
            writer_properties=writer_properties,
            commit_properties=commit.properties(),
        )
        delta = DeltaTable(uri, storage_options=storage_options)
        rows_written = source.num_rows
    else:
        delta = DeltaTable(uri, storage_options=storage_options)
        committed = delta.transaction_version(APP_ID)
        if committed is not None and committed >= commit.version:
            return TableResult(table.name, 0, 0, 0, 0), delta.version()
        source = _read(batches, table)
        changes = _changes(source, delta.to_pyarrow_table(), table)
        if changes.rows == 0:
            delta.create_write_transaction(
                [], mode="append", schema=delta.schema(), commit_properties=commit.properties()
            )
            delta.update_incremental()
        else:
            _merge(delta, changes, schema, table, writer_properties, commit)
        rows_written = changes.rows
    version = delta.version()
    files, size = _files_committed(destination, table.name, version)
    return TableResult(table.name, source.num_rows, rows_written, files, size), version


def _read(batches: Iterable[pa.RecordBatch], table: CanonicalTable) -> pa.Table:
    return pa.Table.from_batches(
        [conform_batch(batch, table) for batch in batches], schema=arrow_schema(table)
    )


def _changes(source: pa.Table, current: pa.Table, table: CanonicalTable) -> _Changes:
    """Rows of ``source`` added or changed since ``current``, and keys of rows removed.

    Both sides get row numbers and are joined on the natural key (a full outer hash join in
    Acero); matched pairs are then compared column by column, nulls equal to nulls.
    """
    if current.schema.names != source.schema.names:
        raise ExportError(
            f"The Delta table {table.name} does not have the canonical table's columns.",
            target=table.name,
        )
    # Compare in the Delta table's types (microsecond timestamps): widening is exact.
    comparable = source.cast(current.schema)
    key = list(table.key)
    joined = (
        comparable.select(key)
        .append_column(_SOURCE_ROW, _row_numbers(source.num_rows))
        .join(
            current.select(key).append_column(_TARGET_ROW, _row_numbers(current.num_rows)),
            keys=key,
            join_type="full outer",
        )
    )
    source_rows, target_rows = joined[_SOURCE_ROW], joined[_TARGET_ROW]
    added = source_rows.filter(pc.is_null(target_rows))
    removed = target_rows.filter(pc.is_null(source_rows))
    matched = joined.filter(pc.and_(pc.is_valid(source_rows), pc.is_valid(target_rows)))
    differs = pa.chunked_array([pa.repeat(False, matched.num_rows)])
    for name in table.column_names:
        if name not in table.key:
            new = comparable[name].take(matched[_SOURCE_ROW])
            old = current[name].take(matched[_TARGET_ROW])
            unequal = pc.coalesce(pc.not_equal(new, old), pc.xor(pc.is_null(new), pc.is_null(old)))
            differs = pc.or_(differs, unequal)
    changed = matched[_SOURCE_ROW].filter(differs)
    upserts = source.take(pa.chunked_array([*added.chunks, *changed.chunks], pa.int64()))
    return _Changes(upserts=upserts, deletions=current.select(key).take(removed))


def _row_numbers(count: int) -> pa.Array:
    return pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), count)), 1)


def _merge(
    delta: DeltaTable,
    changes: _Changes,
    schema: pa.Schema,
    table: CanonicalTable,
    writer_properties: WriterProperties,
    commit: _Commit,
) -> None:
    """One MERGE: upserts insert or update by natural key, flagged key rows delete."""
    deleted = changes.deletions.num_rows
    deletions = pa.table(
        [
            changes.deletions[field.name].cast(field.type)
            if field.name in table.key
            else pa.nulls(deleted, field.type)
            for field in schema
        ],
        schema=schema,
    )
    source = pa.concat_tables(
        [
            changes.upserts.append_column(_DELETE, pa.repeat(False, changes.upserts.num_rows)),
            deletions.append_column(_DELETE, pa.repeat(True, deleted)),
        ]
    )
    on = " AND ".join(f"target.`{name}` = source.`{name}`" for name in table.key)
    (
        delta.merge(
            source,
            predicate=on,
            source_alias="source",
            target_alias="target",
            writer_properties=writer_properties,
            streamed_exec=False,
            commit_properties=commit.properties(),
        )
        .when_matched_delete(predicate=f"source.{_DELETE}")
        .when_matched_update_all(predicate=f"NOT source.{_DELETE}", except_cols=[_DELETE])
        .when_not_matched_insert_all(predicate=f"NOT source.{_DELETE}", except_cols=[_DELETE])
        .execute()
    )


def _files_committed(destination: Destination, table_name: str, version: int) -> tuple[int, int]:
    """Data and change files a commit added, and their bytes, from its log entry."""
    entry = destination.read_bytes(f"{table_name}/_delta_log/{version:020d}.json")
    files = size = 0
    for line in entry.splitlines():
        action = json.loads(line)
        for kind in ("add", "cdc"):
            if kind in action:
                files += 1
                size += int(action[kind]["size"])
    return files, size
