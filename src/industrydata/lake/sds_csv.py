"""The ``sdsCsv`` writer: a snapshot in the School Data Sync lake-export layout.

Order of writing (api-contract §6): every table's part file, then the snapshot's manifest,
then the schema document if missing or outdated, then ``roster/current.roster.manifest.cdm.json``
(one atomic write: this is the moment the snapshot is published), then the root manifest
if missing or outdated. Until the current sub-manifest names it, the folder is not a
snapshot; if writing fails before that, the folder is removed (best effort).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress

import pyarrow as pa

from ..canonical.arrow import conform_batch
from ..canonical.tables import CanonicalTable
from ..errors import IndustryDataError
from . import cdm, layout
from ._csv_encoding import encode_csv
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
    folder = layout.snapshot_folder(snapshot_id)
    written: list[CanonicalTable] = []
    results: list[TableResult] = []
    published = False
    try:
        for table, batches in tables:
            result = _write_table(destination, snapshot_id, table, batches)
            written.append(table)
            results.append(result)
            if on_table_done is not None:
                on_table_done(result)
        destination.write_bytes(
            layout.snapshot_manifest(snapshot_id),
            cdm.render(cdm.snapshot_manifest(snapshot_id, written)),
        )
        _write_if_changed(destination, layout.SCHEMA_DOCUMENT, cdm.render(cdm.schema_document()))
        destination.write_bytes(
            layout.CURRENT_ROSTER_MANIFEST, cdm.render(cdm.current_roster_manifest(snapshot_id))
        )
        published = True
        _write_if_changed(destination, layout.ROOT_MANIFEST, cdm.render(cdm.root_manifest()))
    except BaseException:
        if not published:
            _discard(destination, folder)
        raise
    return SnapshotResult(snapshot_id=snapshot_id, tables=tuple(results))


def _write_table(
    destination: Destination,
    snapshot_id: str,
    table: CanonicalTable,
    batches: Iterable[pa.RecordBatch],
) -> TableResult:
    rows = size = 0
    with destination.open_writer(layout.part_file(snapshot_id, table.name)) as stream:
        for batch in batches:
            data = encode_csv(conform_batch(batch, table))
            stream.write(data)
            rows += batch.num_rows
            size += data.size
    return TableResult(name=table.name, rows_written=rows, files_written=1, bytes_written=size)


def _write_if_changed(destination: Destination, path: str, data: bytes) -> None:
    if not destination.exists(path) or destination.read_bytes(path) != data:
        destination.write_bytes(path, data)


def _discard(destination: Destination, folder: str) -> None:
    """Remove an unpublished snapshot folder; a failure here must not hide the first one."""
    with suppress(IndustryDataError):
        destination.delete(folder)
