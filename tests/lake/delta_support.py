"""Helpers for tests of the ``delta`` writer: a store stand-in, and reading tables back.

``read_delta`` reads a table with deltalake's DataFusion engine, which applies deletion
vectors (``DeltaTable.to_pyarrow_table`` refuses tables that have the feature).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.changes import ChangePosition
from industrydata.canonical.tables import CanonicalTable


def query_delta(uri: str, *, version: int | None = None, **storage: str) -> pa.Table:
    """The Delta table's rows at ``version`` (None: the newest), as DataFusion reads them."""
    delta = DeltaTable(uri, version=version, storage_options=storage or None)
    return pa.table(QueryBuilder().register("t", delta).execute("SELECT * FROM t").read_all())


def read_delta(uri: str, table: CanonicalTable, **storage: str) -> pa.Table:
    """The Delta table's current rows in the canonical Arrow schema, in natural-key order."""
    data = query_delta(uri, **storage).select(table.column_names).cast(arrow_schema(table))
    return data.sort_by([(name, "ascending") for name in table.key])


@dataclass
class _Row:
    values: dict
    number: int
    version: int


class FakeChanges:
    """A store's tables with row numbers, change versions and tombstones: the
    ``ChangeSource`` the writer reads, without a database."""

    def __init__(self) -> None:
        self.epoch = str(uuid.uuid4())
        self.version = 0
        self._next_number = 1
        self._rows: dict[str, dict[tuple, _Row]] = {}
        self._tombstones: dict[str, list[tuple[int, int]]] = {}

    @property
    def position(self) -> ChangePosition | None:
        return ChangePosition(epoch=self.epoch, version=self.version) if self.version else None

    def put(self, table: CanonicalTable, rows: list[dict]) -> None:
        """Insert or update rows (one change version), like a load."""
        self.version += 1
        stored = self._rows.setdefault(table.name, {})
        for row in rows:
            values = {name: row.get(name) for name in table.column_names}
            key = tuple(values[name] for name in table.key)
            if key in stored:
                if stored[key].values != values:
                    stored[key] = _Row(values, stored[key].number, self.version)
            else:
                stored[key] = _Row(values, self._next_number, self.version)
                self._next_number += 1

    def delete(self, table: CanonicalTable, keys: Iterable[tuple]) -> None:
        self.version += 1
        stored = self._rows.setdefault(table.name, {})
        for key in keys:
            row = stored.pop(key)
            self._tombstones.setdefault(table.name, []).append((row.number, self.version))

    def current(self, table: CanonicalTable) -> pa.Table:
        rows = [row.values for row in self._rows.get(table.name, {}).values()]
        data = pa.Table.from_pylist(rows, schema=arrow_schema(table))
        return data.sort_by([(name, "ascending") for name in table.key])

    def rows(self, table: CanonicalTable) -> list[pa.RecordBatch]:
        return self._batches(table, self._rows.get(table.name, {}).values())

    def changed_rows(self, table: CanonicalTable, since: int) -> list[pa.RecordBatch]:
        rows = self._rows.get(table.name, {}).values()
        return self._batches(table, [row for row in rows if row.version > since])

    def removed_rows(self, table: CanonicalTable, since: int) -> pa.Array:
        found = [
            number for number, version in self._tombstones.get(table.name, []) if version > since
        ]
        return pa.array(found, pa.int64())

    def _batches(self, table: CanonicalTable, rows: Iterable[_Row]) -> list[pa.RecordBatch]:
        rows = list(rows)
        data = pa.Table.from_pylist([row.values for row in rows], schema=arrow_schema(table))
        data = data.append_column("RowNumber", pa.array([row.number for row in rows], pa.int64()))
        return data.to_batches(max_chunksize=2)
