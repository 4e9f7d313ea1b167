"""The canonical roster store: table definitions, vocabulary, loaders and readers."""

from .sql import TENANT_COLUMN, sql_table, sql_table_name
from .tables import CANONICAL_TABLES, CanonicalTable, Column, ColumnType, Reference, table_by_name
from .vocabulary import REF_DEFINITIONS, RefDefinition, ref_id

__all__ = [
    "CANONICAL_TABLES",
    "REF_DEFINITIONS",
    "TENANT_COLUMN",
    "CanonicalTable",
    "Column",
    "ColumnType",
    "RefDefinition",
    "Reference",
    "ref_id",
    "sql_table",
    "sql_table_name",
    "table_by_name",
]
