"""Every canonical table has exactly one Arrow schema, derived from its definition, and every
batch a database driver returns is brought to that schema before anyone else sees it."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest

from industrydata.canonical.arrow import arrow_schema, conform_batch
from industrydata.canonical.tables import CANONICAL_TABLES, ColumnType, table_by_name

EXPECTED_TYPES = {
    ColumnType.STRING: pa.string(),
    ColumnType.DATETIME: pa.timestamp("ms", tz="UTC"),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.INT32: pa.int32(),
}


@pytest.mark.parametrize("table", CANONICAL_TABLES, ids=lambda table: table.name)
def test_arrow_schema_matches_definition(table) -> None:
    schema = arrow_schema(table)

    assert schema.names == table.column_names
    assert [field.type for field in schema] == [EXPECTED_TYPES[c.type] for c in table.columns]
    assert all(field.nullable for field in schema)
    assert schema.metadata is None


def test_arrow_schema_covers_all_26_tables() -> None:
    assert len({arrow_schema(table) for table in CANONICAL_TABLES}) == 26


def test_conform_batch_converts_sqlite_driver_types() -> None:
    table = table_by_name("PersonEmailAddress")
    # What ADBC SQLite returns: text date-times, int64 integers, plus the TenantId column,
    # in another order than the definition.
    batch = pa.record_batch(
        {
            "TenantId": ["t1", "t1"],
            "PriorityOrder": pa.array([1, None], pa.int64()),
            "Id": ["a", "b"],
            "EmailAddress": ["x@example.org", ""],
            "FirstSeenDateTime": ["2021-09-05 06:16:22.123456", None],
            "PersonId": ["p", None],
            "RefEmailAddressTypeId": ["10", "10"],
        }
    )

    conformed = conform_batch(batch, table)

    assert conformed.schema == arrow_schema(table)
    assert conformed.column("FirstSeenDateTime").to_pylist() == [
        datetime(2021, 9, 5, 6, 16, 22, 123000, tzinfo=timezone.utc),
        None,
    ]
    assert conformed.column("PriorityOrder").to_pylist() == [1, None]
    assert conformed.column("EmailAddress").to_pylist() == ["x@example.org", ""]


def test_conform_batch_turns_integer_flags_into_booleans() -> None:
    table = table_by_name("PersonIdentifier")
    batch = pa.record_batch(
        {name: pa.nulls(3, pa.int64()) for name in table.column_names}
        | {"IsPresentInSource": pa.array([1, 0, None], pa.int64())}
    )

    conformed = conform_batch(batch, table)

    assert conformed.column("IsPresentInSource").to_pylist() == [True, False, None]
    assert conformed.column("Id").type == pa.string()


def test_conform_batch_converts_postgresql_naive_timestamps() -> None:
    table = table_by_name("SourceSystem")
    naive = datetime(2021, 9, 5, 6, 16, 22, 999999)
    batch = pa.record_batch(
        {
            "Id": ["s"],
            "FirstSeenDateTime": pa.array([naive], pa.timestamp("us")),
            "LastSeenDateTime": pa.array([naive], pa.timestamp("us")),
            "Name": ["School Data Sync"],
        }
    )

    conformed = conform_batch(batch, table)

    assert conformed.column("LastSeenDateTime").to_pylist() == [
        datetime(2021, 9, 5, 6, 16, 22, 999000, tzinfo=timezone.utc)
    ]


def test_conform_batch_passes_conforming_columns_through() -> None:
    table = table_by_name("SourceSystem")
    batch = pa.RecordBatch.from_pylist(
        [{"Id": "s", "FirstSeenDateTime": None, "LastSeenDateTime": None, "Name": "n"}],
        schema=arrow_schema(table),
    )

    conformed = conform_batch(batch, table)

    assert conformed.equals(batch)
    assert (
        conformed.column("Name").buffers()[2].address == batch.column("Name").buffers()[2].address
    )


def test_conform_batch_missing_column_raises() -> None:
    table = table_by_name("SourceSystem")

    with pytest.raises(KeyError):
        conform_batch(pa.record_batch({"Id": ["s"]}), table)
