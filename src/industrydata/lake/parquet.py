"""The ``parquet`` writer: the ``sdsCsv`` folder scheme with one typed Parquet file per table.

Each part file holds the table in ``arrow_schema(table)`` (the CDM column names and types:
strings, UTC millisecond timestamps, booleans, 32-bit integers), zstd-compressed, one row
group per store batch, streamed to the destination batch by batch. The snapshot manifest
marks the partitions with the CDM trait ``is.partition.format.parquet``; publication,
failure and sweeping follow ``_publication``, exactly as for ``sdsCsv``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from ..canonical.arrow import arrow_schema, conform_batch
from ..canonical.tables import CanonicalTable
from . import cdm
from ._publication import publish_snapshot
from .destination import Destination
from .results import SnapshotResult, TableResult

__all__ = ["write_parquet"]

COMPRESSION = "zstd"


def write_parquet(
    destination: Destination,
    *,
    snapshot_id: str,
    tables: Iterable[tuple[CanonicalTable, Iterable[pa.RecordBatch]]],
    on_table_done: Callable[[TableResult], None] | None = None,
) -> SnapshotResult:
    """Write one snapshot of Parquet files and publish it as the current roster snapshot.

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
        partitions=cdm.PARQUET_PARTITIONS,
        write_part=_write_parquet,
        on_table_done=on_table_done,
    )


def _write_parquet(
    stream: BinaryIO, table: CanonicalTable, batches: Iterable[pa.RecordBatch]
) -> tuple[int, int]:
    # PythonFile counts what passes through it, so any write-only stream will do; it is not
    # closed here: the destination completes (or discards) the object itself.
    sink = pa.PythonFile(stream, mode="w")
    rows = 0
    with pq.ParquetWriter(sink, arrow_schema(table), compression=COMPRESSION) as writer:
        for batch in batches:
            writer.write_batch(conform_batch(batch, table))
            rows += batch.num_rows
    return rows, sink.tell()
