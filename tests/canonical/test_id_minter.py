"""The loaders' fast id minter gives exactly ``stable_id`` of the composite key of its parts,
whatever the parts hold (separators, backslashes, non-ASCII text, nothing)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from industrydata.canonical.ids import composite_key, stable_id
from industrydata.canonical.ids import IdMinter

TENANT = "7d1e0c55-0000-4000-8000-000000000001"
SOURCE = "School Data Sync"


@pytest.mark.parametrize(
    "parts",
    [("stu-1",), ("",), ("a\\b",), ("a\x1fb",), ("u1", "email"), ("x\\", "\x1f", "ü"), ("", "")],
)
def test_id_minter_equals_stable_id_of_composite_key(parts: tuple[str, ...]) -> None:
    key = parts[0] if len(parts) == 1 else composite_key(*parts)

    assert IdMinter(TENANT, SOURCE, "Person")(*parts) == stable_id(TENANT, SOURCE, "Person", key)


@given(st.lists(st.text(), min_size=1, max_size=4))
def test_id_minter_equals_stable_id_for_any_parts(parts: list[str]) -> None:
    key = parts[0] if len(parts) == 1 else composite_key(*parts)

    assert IdMinter(TENANT, SOURCE, "Enrollment")(*parts) == stable_id(
        TENANT, SOURCE, "Enrollment", key
    )
