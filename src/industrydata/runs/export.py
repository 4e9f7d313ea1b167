"""Export one snapshot of a tenant's canonical store to a destination.

The run lifecycle (``runs.executor``) calls ``export_snapshot``; this module only moves
data: every canonical table is read inside one read transaction (so the snapshot is
consistent across tables) and streamed, batch by batch, into the format's writer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..canonical.reader import open_store_reader
from ..canonical.tables import CANONICAL_TABLES
from ..errors import InvalidDestination
from ..lake import Destination, SnapshotResult, TableResult, free_snapshot_id, write_sds_csv

__all__ = ["export_snapshot"]

_WRITERS = {"sdsCsv": write_sds_csv}


def export_snapshot(
    store_url: str,
    tenant_id: str,
    destination: Destination,
    *,
    format: str,
    snapshot_time: datetime,
    on_progress: Callable[[TableResult, int, int], None] | None = None,
) -> SnapshotResult:
    """Write the tenant's 26 canonical tables as one snapshot and publish it.

    Args:
        store_url: SQLAlchemy URL of the canonical store.
        tenant_id: whose rows to export.
        destination: an opened destination.
        format: the destination format; only ``sdsCsv`` is available yet.
        snapshot_time: names the snapshot (UTC; naive times are taken as UTC). When that
            second's folder is already in use the id moves one second later, and again,
            until free (``lake.free_snapshot_id``).
        on_progress: called after each table with its result, tables done, tables in all.

    Raises:
        InvalidDestination: the format is not available.
        ExportError, DestinationUnreachable: writing failed; nothing was published.
    """
    writer = _WRITERS.get(format)
    if writer is None:
        raise InvalidDestination(f"The {format} format is not available yet.", target="format")
    snapshot_id = free_snapshot_id(destination, snapshot_time)
    tables_done = 0

    def table_done(result: TableResult) -> None:
        nonlocal tables_done
        tables_done += 1
        if on_progress is not None:
            on_progress(result, tables_done, len(CANONICAL_TABLES))

    with open_store_reader(store_url) as reader:
        return writer(
            destination,
            snapshot_id=snapshot_id,
            tables=((table, reader.read_table(table, tenant_id)) for table in CANONICAL_TABLES),
            on_table_done=table_done,
        )
