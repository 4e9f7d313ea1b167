"""Canonical ids are UUID version 5 GUIDs named by tenant, source system, table and source
key: the same inputs always give the same id, and changing any input gives another."""

from __future__ import annotations

import uuid

import pytest

from industrydata.canonical.ids import (
    PROJECT_NAMESPACE,
    composite_key,
    source_system_id,
    stable_id,
)

INPUTS = ("tenant-a", "School Data Sync", "Person", "114001")


def test_stable_id_same_inputs_same_id() -> None:
    assert stable_id(*INPUTS) == stable_id(*INPUTS)


@pytest.mark.parametrize("position", range(4), ids=["tenant", "source", "table", "key"])
def test_stable_id_any_changed_input_changes_id(position: int) -> None:
    changed = list(INPUTS)
    changed[position] += "x"

    assert stable_id(*changed) != stable_id(*INPUTS)


def test_stable_id_is_uuid5_under_project_namespace() -> None:
    value = stable_id(*INPUTS)

    assert uuid.UUID(value).version == 5
    assert value == str(uuid.uuid5(PROJECT_NAMESPACE, composite_key(*INPUTS)))


@pytest.mark.parametrize("key", ["", "a\\b", "a\x1fb", "\\u", "é€", "x" * 500])
def test_stable_id_matches_uuid5_for_awkward_keys(key: str) -> None:
    assert stable_id("t", "s", "Person", key) == str(
        uuid.uuid5(PROJECT_NAMESPACE, composite_key("t", "s", "Person", key))
    )


def test_composite_key_separator_inside_a_part_is_unambiguous() -> None:
    assert composite_key("a\x1fb", "c") != composite_key("a", "b\x1fc")
    assert composite_key("a\\", "b") != composite_key("a", "\\b")


def test_source_system_id_depends_on_tenant_and_name() -> None:
    first = source_system_id("tenant-a", "School Data Sync")

    assert first == source_system_id("tenant-a", "School Data Sync")
    assert first != source_system_id("tenant-b", "School Data Sync")
    assert first != source_system_id("tenant-a", "OneRoster")
