"""Where the ``sdsCsv`` and ``parquet`` layouts (api-contract §6) put each object, and how
snapshots are named.

::

    current.manifest.cdm.json                        root manifest
    schema/roster.v0.3.2.cdm.json                    entity and attribute definitions
    roster/current.roster.manifest.cdm.json          names the newest snapshot's manifest
    roster/<yyyy-MM-ddTHH-mm-ss>/                    one folder per snapshot, UTC
        snapshot.roster.manifest.cdm.json
        <Table>/part-00000-<uuid4>-c000.csv          (.zstd.parquet in the parquet layout)
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

from ..canonical.tables import SCHEMA_VERSION
from .destination import Destination

__all__ = [
    "CURRENT_ROSTER_MANIFEST",
    "ROOT_MANIFEST",
    "ROSTER_FOLDER",
    "SCHEMA_DOCUMENT",
    "free_snapshot_id",
    "is_snapshot_id",
    "part_file",
    "snapshot_folder",
    "snapshot_id",
    "snapshot_manifest",
    "table_folder",
]

ROOT_MANIFEST = "current.manifest.cdm.json"
SCHEMA_DOCUMENT = f"schema/roster.v{SCHEMA_VERSION}.cdm.json"
ROSTER_FOLDER = "roster"
CURRENT_ROSTER_MANIFEST = f"{ROSTER_FOLDER}/current.roster.manifest.cdm.json"
SNAPSHOT_MANIFEST_NAME = "snapshot.roster.manifest.cdm.json"
SNAPSHOT_ID_FORMAT = "%Y-%m-%dT%H-%M-%S"
_SNAPSHOT_ID = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}$")


def snapshot_id(snapshot_time: datetime) -> str:
    """``2021-09-05T06-16-22`` for a time in UTC (naive times are taken as UTC)."""
    if snapshot_time.tzinfo is not None:
        snapshot_time = snapshot_time.astimezone(timezone.utc)
    return snapshot_time.strftime(SNAPSHOT_ID_FORMAT)


def free_snapshot_id(destination: Destination, snapshot_time: datetime) -> str:
    """The id of ``snapshot_time``, moved one second later while that folder is in use.

    Two snapshots in the same second (or a folder left by a killed run) would otherwise
    share a folder. Moving forward keeps ids unique, deterministic for a given destination
    state, and in the order the snapshots were taken, without making the run wait.
    """
    while destination.list(snapshot_folder(snapshot_id(snapshot_time))):
        snapshot_time += timedelta(seconds=1)
    return snapshot_id(snapshot_time)


def is_snapshot_id(name: str) -> bool:
    """Whether ``name`` has the form of a snapshot id (ids sort in the order of their times)."""
    return bool(_SNAPSHOT_ID.match(name))


def snapshot_folder(snapshot_id: str) -> str:
    """``roster/<snapshot id>``; ValueError for an id not in the layout's format."""
    if not is_snapshot_id(snapshot_id):
        raise ValueError(f"snapshot ids look like 2021-09-05T06-16-22, not {snapshot_id!r}")
    return f"{ROSTER_FOLDER}/{snapshot_id}"


def snapshot_manifest(snapshot_id: str) -> str:
    """The path of a snapshot's manifest; its presence is what makes the folder a snapshot."""
    return f"{snapshot_folder(snapshot_id)}/{SNAPSHOT_MANIFEST_NAME}"


def table_folder(snapshot_id: str, table_name: str) -> str:
    """The folder of one table's part files in a snapshot."""
    return f"{snapshot_folder(snapshot_id)}/{table_name}"


def part_file(snapshot_id: str, table_name: str, suffix: str = "csv") -> str:
    """A new part file name for a table, Spark style: ``part-00000-<uuid4>-c000.<suffix>``
    (``csv``, or ``zstd.parquet`` as Spark names zstd-compressed Parquet)."""
    return f"{table_folder(snapshot_id, table_name)}/part-00000-{uuid.uuid4()}-c000.{suffix}"
