"""Export one snapshot of a tenant's canonical store to a destination.

The run lifecycle (``runs.executor``) calls ``export_snapshot``; this module only moves
data: every canonical table is read inside one read transaction (so the snapshot is
consistent across tables) and streamed, batch by batch, into the format's writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import pyarrow as pa

from ..canonical.changes import ChangePosition
from ..canonical.reader import StoreReader, open_store_reader
from ..canonical.tables import CANONICAL_TABLES, CanonicalTable
from ..errors import InvalidDestination, LoadBeingApplied
from ..lake import (
    Destination,
    SnapshotResult,
    TableResult,
    free_snapshot_id,
    write_delta,
    write_parquet,
    write_sds_csv,
)

__all__ = ["export_snapshot"]

DELTA = "delta"
_FOLDER_WRITERS = {"sdsCsv": write_sds_csv, "parquet": write_parquet}
"""Formats that publish a snapshot folder named after the run's start."""


def export_snapshot(
    store_url: str,
    tenant_id: str,
    destination: Destination,
    *,
    format: str,
    run_id: str,
    snapshot_time: datetime,
    on_progress: Callable[[TableResult, int, int], None] | None = None,
    deletion_vectors: bool = True,
    change_data_feed: bool = True,
    flow_id: str | None = None,
) -> SnapshotResult:
    """Write the tenant's 26 canonical tables as one snapshot and publish it.

    Args:
        store_url: SQLAlchemy URL of the canonical store.
        tenant_id: whose rows to export.
        destination: an opened destination.
        format: ``sdsCsv``, ``parquet`` or ``delta``.
        run_id: the run exporting; ``delta`` records it in every commit.
        snapshot_time: the run's start (UTC; naive times are taken as UTC). It names the
            ``sdsCsv`` or ``parquet`` snapshot folder (moved one second later, and again,
            while that folder is in use: ``lake.free_snapshot_id``) and versions the
            ``delta`` commits, which makes a retried run a no-op.
        on_progress: called after each table with its result, tables done, tables in all.
        deletion_vectors: ``delta`` deletes changed and removed rows with deletion vectors
            (otherwise it rewrites the files that hold them).
        change_data_feed: ``delta`` writes the Change Data Feed (``_change_data`` files
            with the old and new values of changed rows).
        flow_id: the flow exporting; ``delta`` versions its commits with the flow's own
            app transaction.

    Raises:
        InvalidDestination: the format is not available.
        LoadBeingApplied: a load of the tenant is half-applied; nothing was written.
        ExportError, DestinationUnreachable: writing failed; nothing was published (with
            ``delta``, tables committed before the failure stay committed).
    """
    if format != DELTA and format not in _FOLDER_WRITERS:
        raise InvalidDestination(f"The {format} format is not available.", target="format")
    tables_done = 0

    def table_done(result: TableResult) -> None:
        nonlocal tables_done
        tables_done += 1
        if on_progress is not None:
            on_progress(result, tables_done, len(CANONICAL_TABLES))

    with open_store_reader(store_url) as reader:
        if reader.load_being_applied(tenant_id):
            raise LoadBeingApplied(
                "A load of the tenant's roster is being applied; the export waits for it."
            )
        if format == DELTA:
            return write_delta(
                destination,
                run_id=run_id,
                run_time=snapshot_time,
                tables=CANONICAL_TABLES,
                source=_StoreChanges(reader, tenant_id),
                deletion_vectors=deletion_vectors,
                change_data_feed=change_data_feed,
                flow_id=flow_id,
                on_table_done=table_done,
            )
        tables = ((table, reader.read_table(table, tenant_id)) for table in CANONICAL_TABLES)
        return _FOLDER_WRITERS[format](
            destination,
            snapshot_id=free_snapshot_id(destination, snapshot_time),
            tables=tables,
            on_table_done=table_done,
        )


class _StoreChanges:
    """The Delta writer's ``ChangeSource``: the tenant's rows and changes, with row numbers,
    from one store reader (so from one snapshot)."""

    def __init__(self, reader: StoreReader, tenant_id: str) -> None:
        self._reader = reader
        self._tenant_id = tenant_id
        self.position: ChangePosition | None = reader.change_position(tenant_id)

    def rows(self, table: CanonicalTable) -> Iterable[pa.RecordBatch]:
        return self._reader.read_table(table, self._tenant_id, row_numbers=True)

    def changed_rows(self, table: CanonicalTable, since: int) -> Iterable[pa.RecordBatch]:
        return self._reader.read_table(
            table, self._tenant_id, row_numbers=True, changed_since=since
        )

    def removed_rows(self, table: CanonicalTable, since: int) -> pa.Array:
        return self._reader.removed_row_numbers(table, self._tenant_id, since)
