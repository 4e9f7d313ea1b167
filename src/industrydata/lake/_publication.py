"""Publishing a snapshot folder: the sequence the ``sdsCsv`` and ``parquet`` writers share.

Order of writing (api-contract §6): every table's part file, then the snapshot's manifest,
then the schema document if missing or outdated, then ``roster/current.roster.manifest.cdm.json``
(one atomic write: this is the moment the snapshot is published), then the root manifest
if missing or outdated. Until the current sub-manifest names it, the folder is not a
snapshot; if writing fails before that, the folder is removed (best effort).

After publishing, the debris of interrupted runs is swept: snapshot folders older than the
new snapshot that were never published, and temporary files of interrupted manifest writes.
A destination is written by one flow, whose runs never overlap, so at that moment nothing
else is being written there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import BinaryIO

import pyarrow as pa

from ..canonical.tables import CanonicalTable
from ..errors import IndustryDataError
from . import cdm, layout
from .destination import Destination
from .results import SnapshotResult, TableResult

PartWriter = Callable[[BinaryIO, CanonicalTable, Iterable[pa.RecordBatch]], tuple[int, int]]
"""Encodes one table's batches into a part file's stream; returns (rows, bytes) written."""

_SWEPT_FOLDERS = ("", "schema", layout.ROSTER_FOLDER)


def publish_snapshot(
    destination: Destination,
    *,
    snapshot_id: str,
    tables: Iterable[tuple[CanonicalTable, Iterable[pa.RecordBatch]]],
    partitions: cdm.PartitionFormat,
    write_part: PartWriter,
    on_table_done: Callable[[TableResult], None] | None,
) -> SnapshotResult:
    """Write one part file per table with ``write_part``, then the manifests; publish."""
    written: list[CanonicalTable] = []
    results: list[TableResult] = []
    published = False
    try:
        for table, batches in tables:
            path = layout.part_file(snapshot_id, table.name, partitions.file_suffix)
            with destination.open_writer(path) as stream:
                rows, size = write_part(stream, table, batches)
            result = TableResult(
                name=table.name,
                rows_read=rows,
                rows_written=rows,
                files_written=1,
                bytes_written=size,
            )
            written.append(table)
            results.append(result)
            if on_table_done is not None:
                on_table_done(result)
        destination.write_bytes(
            layout.snapshot_manifest(snapshot_id),
            cdm.render(cdm.snapshot_manifest(snapshot_id, written, partitions)),
        )
        _write_if_changed(destination, layout.SCHEMA_DOCUMENT, cdm.render(cdm.schema_document()))
        previous = _current_snapshot(destination)
        destination.write_bytes(
            layout.CURRENT_ROSTER_MANIFEST, cdm.render(cdm.current_roster_manifest(snapshot_id))
        )
        published = True
        _write_if_changed(destination, layout.ROOT_MANIFEST, cdm.render(cdm.root_manifest()))
    except BaseException:
        if not published:
            _discard(destination, layout.snapshot_folder(snapshot_id))
        raise
    _sweep(destination, published=snapshot_id, previous=previous)
    return SnapshotResult(snapshot_id=snapshot_id, tables=tuple(results))


def _write_if_changed(destination: Destination, path: str, data: bytes) -> None:
    if not destination.exists(path) or destination.read_bytes(path) != data:
        destination.write_bytes(path, data)


def _current_snapshot(destination: Destination) -> str | None:
    """The id the current sub-manifest names before this run replaces it (None if none)."""
    if not destination.exists(layout.CURRENT_ROSTER_MANIFEST):
        return None
    try:
        document = json.loads(destination.read_bytes(layout.CURRENT_ROSTER_MANIFEST))
    except ValueError:
        return None
    return cdm.named_snapshot(document) if isinstance(document, dict) else None


def _discard(destination: Destination, folder: str) -> None:
    """Remove an unpublished snapshot folder; a failure here must not hide the first one."""
    with suppress(IndustryDataError):
        destination.delete(folder)


def _sweep(destination: Destination, *, published: str, previous: str | None) -> None:
    """Remove the debris of interrupted runs, best effort (the next run tries again).

    A folder older than the snapshot just published is debris when it has no manifest, or
    when its manifest is newer than the snapshot that was current before: such a run was
    killed between its manifest and the pointer, so no pointer ever named it. Every other
    folder with a manifest was published once and is never removed.
    """
    folders: dict[str, bool] = {}
    with suppress(IndustryDataError):
        for path in destination.list(layout.ROSTER_FOLDER):
            parts = path.split("/")
            if len(parts) >= 3 and layout.is_snapshot_id(parts[1]) and parts[1] < published:
                has_manifest = parts[2:] == [layout.SNAPSHOT_MANIFEST_NAME]
                folders[parts[1]] = folders.get(parts[1], False) or has_manifest
    for name, has_manifest in folders.items():
        if not has_manifest or (previous is not None and name > previous):
            _discard(destination, layout.snapshot_folder(name))
    for folder in _SWEPT_FOLDERS:
        with suppress(IndustryDataError):
            destination.sweep_interrupted_writes(folder)
