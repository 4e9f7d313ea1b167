"""What a writer reports: per table, and per snapshot."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SnapshotResult", "TableResult"]


@dataclass(frozen=True)
class TableResult:
    """One canonical table written to a snapshot.

    ``rows_read`` counts the table's rows in the store; ``rows_written`` the rows the writer
    wrote, which is the same for a full snapshot and only the rows added, changed or removed
    for an incremental (Delta) one.
    """

    name: str
    rows_read: int
    rows_written: int
    files_written: int
    bytes_written: int


@dataclass(frozen=True)
class SnapshotResult:
    """A published snapshot: its id at the destination (a folder name, or a Delta table
    version) and its tables, in writing order."""

    snapshot_id: str
    tables: tuple[TableResult, ...]
