"""The CDM documents come from the table definitions and match the reference SDS export:
the schema document byte for byte, the snapshot manifest up to the snapshot folder's name,
the root manifest without the activity sub-manifest we have no data for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name
from industrydata.lake.cdm import (
    current_roster_manifest,
    render,
    root_manifest,
    schema_document,
    snapshot_manifest,
)

REFERENCE_SNAPSHOT = "2021-09-05T06-16-22"


@pytest.fixture
def export_dir(reference_dir: Path) -> Path:
    return reference_dir / "sds-lake-export-2021"


@pytest.mark.reference
def test_schema_document_equals_reference_bytes(export_dir: Path) -> None:
    reference = (export_dir / "schema" / "roster.v0.3.2.cdm.json").read_bytes()

    assert render(schema_document()) == reference


@pytest.mark.reference
def test_snapshot_manifest_equals_reference(export_dir: Path) -> None:
    reference = export_dir / "roster" / REFERENCE_SNAPSHOT / "snapshot.roster.manifest.cdm.json"

    produced = render(snapshot_manifest(REFERENCE_SNAPSHOT, reversed(CANONICAL_TABLES)))

    assert produced == reference.read_bytes()
    assert len(json.loads(produced)["relationships"]) == 28


@pytest.mark.reference
def test_root_manifest_equals_reference_without_activity(export_dir: Path) -> None:
    reference = json.loads((export_dir / "current.manifest.cdm.json").read_bytes())
    reference["subManifests"] = [
        entry for entry in reference["subManifests"] if "activity" not in entry["manifestName"]
    ]

    assert root_manifest() == reference


def test_snapshot_manifest_subset_keeps_only_inner_relationships() -> None:
    tables = [table_by_name("Person"), table_by_name("PersonEmailAddress"), table_by_name("Course")]

    manifest = snapshot_manifest("2026-11-27T06-00-00", tables)

    assert [entity["entityName"] for entity in manifest["entities"]] == [
        "Course",
        "Person",
        "PersonEmailAddress",
    ]
    assert manifest["relationships"] == [
        {
            "fromEntity": "local:/schema/roster.v0.3.2.cdm.json/PersonEmailAddress",
            "fromEntityAttribute": "PersonId",
            "toEntity": "local:/schema/roster.v0.3.2.cdm.json/Person",
            "toEntityAttribute": "Id",
        }
    ]
    assert manifest["entities"][1]["dataPartitionPatterns"] == [
        {
            "name": "Person-partitionPattern",
            "rootLocation": "local:/roster/2026-11-27T06-00-00/Person",
            "regularExpression": "/.+\\.csv$",
        }
    ]


def test_current_roster_manifest_names_the_snapshot_manifest() -> None:
    assert render(current_roster_manifest("2026-11-27T06-00-00")).decode() == (
        "{\n"
        '  "manifestName": "current.roster",\n'
        '  "subManifests": [\n'
        "    {\n"
        '      "manifestName": "snapshot.roster.manifest.cdm.json",\n'
        '      "definition": "local:/roster/2026-11-27T06-00-00/'
        'snapshot.roster.manifest.cdm.json"\n'
        "    }\n"
        "  ],\n"
        '  "jsonSchemaSemanticVersion": "1.2.0"\n'
        "}"
    )
