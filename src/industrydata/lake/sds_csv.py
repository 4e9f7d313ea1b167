"""The ``sdsCsv`` writer: a snapshot in the School Data Sync lake-export layout.

Headerless UTF-8 CSV part files (``_csv_encoding``), published in the order and with the
failure and sweeping rules of ``_publication``: until the current sub-manifest names the
new folder it is not a snapshot, and the previous snapshot stays current.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import BinaryIO

import pyarrow as pa

from ..canonical.arrow import conform_batch
from ..canonical.tables import CanonicalTable
from . import cdm
from ._csv_encoding import encode_csv
from ._publication import publish_snapshot
from .destination import Destination
from .results import SnapshotResult, TableResult

__all__ = ["write_sds_csv"]


def write_sds_csv(
    destination: Destination,
    *,
    snapshot_id: str,
    tables: Iterable[tuple[CanonicalTable, Iterable[pa.RecordBatch]]],
    on_table_done: Callable[[TableResult], None] | None = None,
) -> SnapshotResult:
    """Write one snapshot and publish it as the destination's current roster snapshot.

    Args:
        destination: where to write.
        snapshot_id: the snapshot folder's name (``2021-09-05T06-16-22``); the folder must
            not be in use (see ``layout.free_snapshot_id``).
        tables: each canonical table with its rows as Arrow batches (converted to the
            table's Arrow schema if they are not in it); consumed one table at a time.
        on_table_done: called after each table's file is complete.

    Raises:
        ExportError, DestinationUnreachable: the destination failed; nothing was published.
    """
    return publish_snapshot(
        destination,
        snapshot_id=snapshot_id,
        tables=tables,
        partitions=cdm.CSV_PARTITIONS,
        write_part=_write_csv,
        on_table_done=on_table_done,
    )


def _write_csv(
    stream: BinaryIO, table: CanonicalTable, batches: Iterable[pa.RecordBatch]
) -> tuple[int, int]:
    rows = size = 0
    for batch in batches:
        data = encode_csv(conform_batch(batch, table))
        stream.write(data)
        rows += batch.num_rows
        size += data.size
    return rows, size
