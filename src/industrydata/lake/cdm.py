"""The Common Data Model documents of the ``sdsCsv`` layout, built from the table definitions.

Key order, ``local:/`` corpus paths, partition patterns and formatting (two-space indent,
no trailing newline) follow the reference SDS export, so the schema document comes out
byte-identical to Microsoft's ``roster.v0.3.2.cdm.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..canonical.tables import CANONICAL_TABLES, CanonicalTable
from . import layout

__all__ = [
    "current_roster_manifest",
    "render",
    "root_manifest",
    "schema_document",
    "snapshot_manifest",
]

JSON_SCHEMA_SEMANTIC_VERSION = "1.2.0"
CSV_PARTITION_EXPRESSION = "/.+\\.csv$"

Document = dict[str, Any]


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


def snapshot_manifest(snapshot_id: str, tables: Iterable[CanonicalTable]) -> Document:
    """A snapshot's manifest: its entities (alphabetical), where their CSV files are, and the
    relationships between them."""
    ordered = sorted(tables, key=lambda table: table.name)
    names = {table.name for table in ordered}
    return {
        "manifestName": "snapshot.roster",
        "entities": [
            {
                "type": "LocalEntity",
                "entityName": table.name,
                "entityPath": _entity_path(table.name),
                "dataPartitionPatterns": [
                    {
                        "name": f"{table.name}-partitionPattern",
                        "rootLocation": _local(layout.table_folder(snapshot_id, table.name)),
                        "regularExpression": CSV_PARTITION_EXPRESSION,
                    }
                ],
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


def _local(path: str) -> str:
    return f"local:/{path}"


def _entity_path(table_name: str) -> str:
    return _local(f"{layout.SCHEMA_DOCUMENT}/{table_name}")
