"""The canonical roster store: table definitions, vocabulary, loaders and readers."""

from .arrow import arrow_schema, conform_batch
from .changes import ChangePosition
from .ids import IdMinter, source_system_id, stable_id
from .reader import ROW_NUMBER_FIELD, StoreReader, open_store_reader, read_table
from .sql import (
    ROW_NUMBER_COLUMN,
    ROW_VERSION_COLUMN,
    TENANT_COLUMN,
    sql_table,
    sql_table_name,
)
from .statistics import count_rows, has_rows
from .tables import (
    CANONICAL_TABLES,
    SCHEMA_VERSION,
    CanonicalTable,
    Column,
    ColumnType,
    Reference,
    table_by_name,
)
from .vocabulary import REF_DEFINITIONS, RefDefinition, ref_id

__all__ = [
    "CANONICAL_TABLES",
    "REF_DEFINITIONS",
    "ROW_NUMBER_COLUMN",
    "ROW_NUMBER_FIELD",
    "ROW_VERSION_COLUMN",
    "SCHEMA_VERSION",
    "TENANT_COLUMN",
    "CanonicalTable",
    "ChangePosition",
    "IdMinter",
    "Column",
    "ColumnType",
    "RefDefinition",
    "Reference",
    "StoreReader",
    "arrow_schema",
    "conform_batch",
    "count_rows",
    "has_rows",
    "open_store_reader",
    "read_table",
    "ref_id",
    "source_system_id",
    "sql_table",
    "sql_table_name",
    "stable_id",
    "table_by_name",
]
