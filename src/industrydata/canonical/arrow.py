"""Arrow schemas of the canonical tables, and the normalisation of driver output to them.

The schema is derived from the table definitions, one Arrow type per CDM data format.
Database drivers return close but different types (SQLite: integer booleans and text
date-times; PostgreSQL: naive microsecond timestamps), so every batch read from the store
goes through ``conform_batch`` and all later stages see exactly ``arrow_schema(table)``.
"""

from __future__ import annotations

from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from .tables import CanonicalTable, ColumnType

__all__ = ["arrow_schema", "conform_batch"]

_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.STRING: pa.string(),
    ColumnType.DATETIME: pa.timestamp("ms", tz="UTC"),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.INT32: pa.int32(),
}

# SQLAlchemy keeps SQLite date-times as text with microseconds ("2021-09-05 06:16:22.000000").
_SQLITE_DATETIME_TEXT = pa.timestamp("us")


@cache
def arrow_schema(table: CanonicalTable) -> pa.Schema:
    """The Arrow schema of a canonical table: its columns in definition order, all nullable."""
    return pa.schema([pa.field(column.name, _ARROW_TYPES[column.type]) for column in table.columns])


def conform_batch(batch: pa.RecordBatch, table: CanonicalTable) -> pa.RecordBatch:
    """``batch`` in exactly ``arrow_schema(table)``: columns picked by name, types converted.

    Extra columns (such as ``TenantId``) are dropped; a column already of the right type is
    passed through without a copy.
    """
    schema = arrow_schema(table)
    arrays = [_conform_array(batch.column(field.name), field.type) for field in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _conform_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    if array.type == target:
        return array
    if pa.types.is_timestamp(target):
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            array = array.cast(_SQLITE_DATETIME_TEXT)
        # Naive store times are UTC; casting to the zoned type keeps the instant, and
        # safe=False truncates sub-millisecond digits the export does not carry.
        return array.cast(target, safe=False)
    if pa.types.is_boolean(target) and pa.types.is_integer(array.type):
        return pc.not_equal(array, 0)
    return array.cast(target)
