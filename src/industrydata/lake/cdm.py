"""The Common Data Model documents of the ``sdsCsv`` layout, built from the table definitions.

Key order, ``local:/`` corpus paths, partition patterns and formatting (two-space indent,
no trailing newline) follow the reference SDS export, so the schema document comes out
byte-identical to Microsoft's ``roster.v0.3.2.cdm.json``. The ``parquet`` format uses the same
documents; only its partition patterns differ (``PARQUET_PARTITIONS``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..canonical.tables import CANONICAL_TABLES, CanonicalTable
from . import layout

__all__ = [
    "CSV_PARTITIONS",
    "PARQUET_PARTITIONS",
    "PartitionFormat",
    "current_roster_manifest",
    "named_snapshot",
    "render",
    "root_manifest",
    "schema_document",
    "snapshot_manifest",
]

JSON_SCHEMA_SEMANTIC_VERSION = "1.2.0"

Document = dict[str, Any]


@dataclass(frozen=True)
class PartitionFormat:
    """How a snapshot's part files are encoded, and how its manifest tells readers so."""

    file_suffix: str
    """What part file names end with (``csv``, ``zstd.parquet``)."""
    extension: str
    """What the partition pattern's regular expression matches (``csv``, ``parquet``)."""
    format_trait: str | None = None
    """The CDM trait naming the file format; None for CSV, the CDM default (and what the
    reference manifest, which names no format, relies on)."""


CSV_PARTITIONS = PartitionFormat(file_suffix="csv", extension="csv")
PARQUET_PARTITIONS = PartitionFormat(
    file_suffix="zstd.parquet", extension="parquet", format_trait="is.partition.format.parquet"
)


def render(document: Document) -> bytes:
    """The document as the reference writes it: UTF-8 JSON, two-space indent."""
    return json.dumps(document, indent=2).encode("utf-8")


def schema_document() -> Document:
    """Entity definitions: every canonical table with its attributes in column order."""
    return {
        "jsonSchemaSemanticVersion": JSON_SCHEMA_SEMANTIC_VERSION,
        "imports": [{"corpusPath": "cdm:/foundations.cdm.json"}],
        "definitions": [
            {
                "entityName": table.name,
                "hasAttributes": [
                    {"name": column.name, "dataFormat": column.type.value}
                    for column in table.columns
                ],
            }
            for table in CANONICAL_TABLES
        ],
    }


def snapshot_manifest(
    snapshot_id: str,
    tables: Iterable[CanonicalTable],
    partitions: PartitionFormat = CSV_PARTITIONS,
) -> Document:
    """A snapshot's manifest: its entities (alphabetical), where their part files are and in
    which format, and the relationships between them."""
    ordered = sorted(tables, key=lambda table: table.name)
    names = {table.name for table in ordered}
    return {
        "manifestName": "snapshot.roster",
        "entities": [
            {
                "type": "LocalEntity",
                "entityName": table.name,
                "entityPath": _entity_path(table.name),
                "dataPartitionPatterns": [_partition_pattern(snapshot_id, table, partitions)],
            }
            for table in ordered
        ],
        "relationships": [
            {
                "fromEntity": _entity_path(table.name),
                "fromEntityAttribute": reference.column,
                "toEntity": _entity_path(reference.to_table),
                "toEntityAttribute": reference.to_column,
            }
            for table in ordered
            for reference in table.references
            if reference.to_table in names
        ],
        "jsonSchemaSemanticVersion": JSON_SCHEMA_SEMANTIC_VERSION,
    }


def current_roster_manifest(snapshot_id: str) -> Document:
    """The roster sub-manifest: names the newest snapshot's manifest as its only sub-manifest
    (shaped like the root manifest, which names sub-manifests the same way)."""
    return {
        "manifestName": "current.roster",
        "subManifests": [
            {
                "manifestName": layout.SNAPSHOT_MANIFEST_NAME,
                "definition": _local(layout.snapshot_manifest(snapshot_id)),
            }
        ],
        "jsonSchemaSemanticVersion": JSON_SCHEMA_SEMANTIC_VERSION,
    }


def named_snapshot(document: Document) -> str | None:
    """The snapshot id a current roster sub-manifest names (None if it names none)."""
    for entry in document.get("subManifests", []):
        match = _SNAPSHOT_DEFINITION.fullmatch(str(entry.get("definition", "")))
        if match:
            return match.group(1)
    return None


def root_manifest() -> Document:
    """The root manifest: the roster sub-manifest (there is no activity data to name)."""
    return {
        "manifestName": "current",
        "subManifests": [
            {
                "manifestName": layout.CURRENT_ROSTER_MANIFEST.rsplit("/", 1)[-1],
                "definition": _local(layout.CURRENT_ROSTER_MANIFEST),
            }
        ],
        "jsonSchemaSemanticVersion": JSON_SCHEMA_SEMANTIC_VERSION,
    }


_SNAPSHOT_DEFINITION = re.compile(
    rf"local:/{layout.ROSTER_FOLDER}/([^/]+)/{re.escape(layout.SNAPSHOT_MANIFEST_NAME)}"
)


def _partition_pattern(
    snapshot_id: str, table: CanonicalTable, partitions: PartitionFormat
) -> Document:
    pattern: Document = {
        "name": f"{table.name}-partitionPattern",
        "rootLocation": _local(layout.table_folder(snapshot_id, table.name)),
        "regularExpression": f"/.+\\.{partitions.extension}$",
    }
    if partitions.format_trait is not None:
        pattern["exhibitsTraits"] = [{"traitReference": partitions.format_trait}]
    return pattern


def _local(path: str) -> str:
    return f"local:/{path}"


def _entity_path(table_name: str) -> str:
    return _local(f"{layout.SCHEMA_DOCUMENT}/{table_name}")
