"""Destinations and writers: where snapshots go and the layouts they are written in."""

from .delta import write_delta
from .destination import Destination, DestinationIdentity
from .layout import free_snapshot_id, snapshot_id
from .local import LocalDestination
from .memory import MemoryDestination
from .parquet import write_parquet
from .results import SnapshotResult, TableResult
from .sds_csv import write_sds_csv
from .url import (
    CREDENTIAL_KINDS,
    FORMATS,
    DestinationSpec,
    open_destination,
    parse_destination,
)

__all__ = [
    "CREDENTIAL_KINDS",
    "FORMATS",
    "Destination",
    "DestinationIdentity",
    "DestinationSpec",
    "LocalDestination",
    "MemoryDestination",
    "SnapshotResult",
    "TableResult",
    "free_snapshot_id",
    "open_destination",
    "parse_destination",
    "snapshot_id",
    "write_delta",
    "write_parquet",
    "write_sds_csv",
]
