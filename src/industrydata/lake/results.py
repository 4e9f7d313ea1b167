"""What a writer reports: per table, and per snapshot."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SnapshotResult", "TableResult"]


@dataclass(frozen=True)
class TableResult:
    """One canonical table written to a snapshot."""

    name: str
    rows_written: int
    files_written: int
    bytes_written: int


@dataclass(frozen=True)
class SnapshotResult:
    """A published snapshot: its id at the destination and its tables, in writing order."""

    snapshot_id: str
    tables: tuple[TableResult, ...]
