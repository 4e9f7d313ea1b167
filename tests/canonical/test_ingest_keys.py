"""The compact key structures of a load are exact: a key is found once added and only then,
with its value, across growth and colliding slots; records put aside come back whole and in
order."""

from __future__ import annotations

import random
import uuid

from industrydata.canonical.ids import IdMinter
from industrydata.canonical.ingest._deferred import Deferred
from industrydata.canonical.ingest._keys import (
    KeyBudget,
    KeyTable,
    KnownIds,
    fingerprint,
    id_fingerprint,
)

TENANT = "3f5e8d1a-0000-4000-8000-00000000c0de"


def test_a_key_table_holds_every_key_with_its_first_value_across_growth() -> None:
    generator = random.Random(8)
    keys = [generator.getrandbits(128) for _ in range(20_000)]
    table = KeyTable(values=True)
    for line, key in enumerate(keys, start=2):
        assert table.setdefault(key, line) is None
    assert len(table) == len(keys)
    assert table.nbytes <= 20 * 2 * len(keys) / 0.8  # grew, at most three fifths empty
    for line, key in enumerate(keys, start=2):
        assert table.setdefault(key, 999_999) == line  # the first value, unchanged
        assert table.get(key) == line
    others = [generator.getrandbits(128) for _ in range(20_000)]
    assert not any(key in table for key in others)
    assert all(table.get(key) is None for key in others)


def test_values_past_four_bytes_are_kept_whole() -> None:
    table = KeyTable(values=True)
    small = list(range(1, 2_000))
    for key in small:
        table.setdefault(key << 70, key)
    table.setdefault(1 << 126, 1 << 40)  # a line past 4,294,967,295
    for key in range(2_000, 4_000):  # and growth after it
        table.setdefault(key << 70, key)
    assert table.get(1 << 126) == 1 << 40
    assert all(table.get(key << 70) == key for key in range(1, 4_000))


def test_keys_that_share_a_slot_or_a_word_stay_apart() -> None:
    table = KeyTable()
    same_slot = [(high << 64) | 5 for high in range(1, 1_000)]  # one low word: one slot
    same_high = [(7 << 64) | (low << 40) for low in range(1, 1_000)]  # one high word
    for key in same_slot + same_high:
        assert table.add(key)
    for key in same_slot + same_high:
        assert not table.add(key)
        assert key in table
    assert (1_000 << 64) | 5 not in table
    assert (7 << 64) | (1_000 << 40) not in table
    assert (8 << 64) | (1 << 40) not in table
    assert len(table) == len(same_slot) + len(same_high)


def test_fingerprints_tell_composite_keys_apart() -> None:
    assert fingerprint("a", "b") == fingerprint("a", "b")
    assert fingerprint("a", "b") != fingerprint("b", "a")
    assert fingerprint("a\x1fb") != fingerprint("a", "b")  # the separator inside a part
    assert fingerprint("ab", "") != fingerprint("a", "b")
    assert fingerprint("x").bit_length() <= 128


def test_known_ids_answer_the_minted_id_of_a_known_key_only() -> None:
    mint = IdMinter(TENANT, "School Data Sync", "Person")
    known = KnownIds(mint)
    for n in range(5_000):
        known.add(mint(f"user-{n}"))
    assert len(known) == 5_000
    assert known.get("user-42") == mint("user-42")
    assert "user-4999" in known
    assert known.get("user-5000") is None
    assert known.get("User-42") is None  # ids are case-sensitive
    assert id_fingerprint(mint("user-1")) == uuid.UUID(mint("user-1")).int
    for _ in range(3):  # again, from the ids kept at hand, past their bound
        assert all(known.get(f"user-{n}") == mint(f"user-{n}") for n in range(5_000))
        assert not any(f"user-{n}" in known for n in range(5_000, 5_100))


def test_records_put_aside_come_back_in_order_once() -> None:
    deferred = Deferred()
    try:
        entries = [(n, f"parent-{n}", {"Id": str(n), "Name": "ä" * n}) for n in range(2_000)]
        for entry in entries:
            deferred.append(entry)
        assert len(deferred) == 2_000
        assert list(deferred.drain()) == entries
        assert list(deferred.drain()) == []
        deferred.append((1, "again", {}))
        assert list(deferred.drain()) == [(1, "again", {})]
    finally:
        deferred.close()


def test_a_key_table_beyond_its_budget_spills_and_still_answers_exactly() -> None:
    generator = random.Random(9)
    keys = [generator.getrandbits(128) for _ in range(30_000)]
    budget = KeyBudget(256 * 1024)  # slots of 64 KiB at most: runs from the first 2,600 keys
    table = KeyTable(values=True, budget=budget)
    for line, key in enumerate(keys, start=2):
        assert table.setdefault(key, line) is None
    assert table.runs >= 2  # spilled more than once, merged to a few runs
    assert table.runs <= 8
    assert len(table) == len(keys)
    assert budget.used <= budget.limit
    for line, key in enumerate(keys, start=2):
        assert table.setdefault(key, 1) == line  # a duplicate found in memory or on disk
        assert table.get(key) == line
    others = [generator.getrandbits(128) for _ in range(20_000)]
    assert not any(key in table for key in others)


def test_spilled_keys_sharing_a_high_word_across_blocks_are_found() -> None:
    table = KeyTable(budget=KeyBudget(64 * 1024))
    keys = [(7 << 64) | low for low in range(1, 10_000)]  # one high word: every fence alike
    for key in keys:
        assert table.add(key)
    assert table.runs
    assert all(key in table for key in keys)
    assert (7 << 64) | 10_000 not in table
    assert 0 not in table


def test_the_largest_table_spills_for_another_that_grows() -> None:
    budget = KeyBudget(256 * 1024)  # a table's slots: 64 KiB at most, 3,276 keys
    generator = random.Random(10)
    full = [KeyTable(budget=budget) for _ in range(4)]
    for table in full:
        for _ in range(3_000):
            table.add(generator.getrandbits(128))
    assert not any(table.runs for table in full)
    growing = KeyTable(budget=budget)
    for _ in range(3_000):
        growing.add(generator.getrandbits(128))
        assert budget.used <= budget.limit + 16 * 1024  # a table's first slots are free
    assert not growing.runs
    assert sum(bool(table.runs) for table in full) >= 1  # the largest made room
    assert all(len(table) == 3_000 for table in [*full, growing])


def test_known_ids_over_a_small_budget_answer_references() -> None:
    minter = IdMinter(TENANT, "SIS", "Person")
    known = KnownIds(minter, KeyBudget(64 * 1024))
    for number in range(20_000):
        known.add(minter(f"user-{number}"))
    assert known.nbytes <= 64 * 1024
    assert all(known.get(f"user-{number}") == minter(f"user-{number}") for number in range(0, 20_000, 7))
    assert known.get("user-20000") is None
