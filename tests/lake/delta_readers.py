"""Independent Delta readers, each giving a table's rows (or its change feed) as a multiset.

A writer's tables are only as good as what other code bases read from them, so the tests
read them with every reader a consumer is likely to use, none of which shares code with
the writer:

* ``deltalake-pyarrow``: delta-rs's log replay, ``DeltaTable.to_pyarrow_table``
  (pyarrow's Parquet reader; refuses tables with the ``deletionVectors`` reader feature);
* ``deltalake-datafusion``: delta-rs's DataFusion engine (``QueryBuilder``);
* ``duckdb``: DuckDB's ``delta_scan`` (the ``delta`` extension is built on delta-kernel-rs);
* ``polars``: ``pl.read_delta``, delta-rs for the log and the deletion vectors, polars's own
  Parquet reader for the data;
* ``delta-kernel``: delta-kernel-rs's default engine (``delta_kernel_rust_sharing_wrapper``),
  which reads only a table's newest version.

Change Data Feed readers: ``deltalake-load_cdf`` (delta-rs) and ``delta-kernel``
(``TableChangesScanBuilder``). delta-rs ``load_cdf`` aborts the process on some deletion
vectors (a panic across its FFI boundary), so it runs in a child process that serves the
whole test process: an abort fails the test that asked, not the test session.

Rows are compared as multisets of tuples in the canonical Arrow schema, so order, batch
boundaries and the readers' own type choices (large strings, time zone names) do not matter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

import duckdb
import duckdb_extension_delta
import polars as pl
import pyarrow as pa
from delta_kernel_rust_sharing_wrapper import (
    PythonInterface,
    ScanBuilder,
    Table,
    TableChangesScanBuilder,
)
from deltalake import DeltaTable

from industrydata.canonical.arrow import arrow_schema
from industrydata.canonical.tables import CanonicalTable

from .delta_support import query_delta

__all__ = [
    "CHANGE_READERS",
    "READERS",
    "ChangeReader",
    "Reader",
    "change_multiset",
    "row_multiset",
    "store_changes",
]

CHANGE_TYPE = "_change_type"
COMMIT_VERSION = "_commit_version"
INSERT, DELETE = "insert", "delete"
PREIMAGE, POSTIMAGE = "update_preimage", "update_postimage"


@dataclass(frozen=True)
class Reader:
    """A reader of a table's rows at its newest version or, with ``time_travel``, any other."""

    name: str
    read: Callable[[Path, int | None], pa.Table]
    deletion_vectors: bool
    """Whether it reads tables with the ``deletionVectors`` feature (else it refuses them)."""
    time_travel: bool


@dataclass(frozen=True)
class ChangeReader:
    """A reader of a table's Change Data Feed between two versions (both included)."""

    name: str
    read: Callable[[Path, int, int], pa.Table]


def _deltalake_pyarrow(path: Path, version: int | None) -> pa.Table:
    return DeltaTable(str(path), version=version).to_pyarrow_table()


def _deltalake_datafusion(path: Path, version: int | None) -> pa.Table:
    return query_delta(str(path), version=version)


@cache
def _duckdb() -> duckdb.DuckDBPyConnection:
    """A connection with the ``delta`` extension of the installed wheel (no download): the
    wheel's extension is unsigned, hence ``allow_unsigned_extensions``."""
    extension = (
        Path(duckdb_extension_delta.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "delta.duckdb_extension"
    )
    connection = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    connection.execute(f"LOAD '{extension}'")
    return connection


def _duckdb_delta_scan(path: Path, version: int | None) -> pa.Table:
    scan = "delta_scan(?)" if version is None else "delta_scan(?, version => ?)"
    parameters = [str(path)] if version is None else [str(path), version]
    return _duckdb().execute(f"SELECT * FROM {scan}", parameters).to_arrow_table()


def _polars(path: Path, version: int | None) -> pa.Table:
    return pl.read_delta(str(path), version=version).to_arrow()


def _kernel(path: Path, version: int | None) -> pa.Table:
    if version is not None:
        raise ValueError("delta_kernel_rust_sharing_wrapper reads only the newest version")
    uri = path.absolute().as_uri()
    engine = PythonInterface(uri)
    snapshot = Table(uri).snapshot(engine)
    return ScanBuilder(snapshot).build().execute(engine).read_all()


READERS = (
    Reader("deltalake-pyarrow", _deltalake_pyarrow, deletion_vectors=False, time_travel=True),
    Reader("deltalake-datafusion", _deltalake_datafusion, deletion_vectors=True, time_travel=True),
    Reader("duckdb", _duckdb_delta_scan, deletion_vectors=True, time_travel=True),
    Reader("polars", _polars, deletion_vectors=True, time_travel=True),
    Reader("delta-kernel", _kernel, deletion_vectors=True, time_travel=False),
)

_LOAD_CDF = """
import json, sys
import pyarrow as pa
from deltalake import DeltaTable
for line in sys.stdin:
    request = json.loads(line)
    try:
        changes = pa.table(
            DeltaTable(request["path"]).load_cdf(
                starting_version=request["start"], ending_version=request["end"]
            )
        )
        with pa.ipc.new_file(request["out"], changes.schema) as out:
            out.write_table(changes)
        print("ok", flush=True)
    except Exception as error:
        print(repr(error).replace("\\n", " "), flush=True)
"""


@dataclass
class _Child:
    """A child process serving ``load_cdf`` requests, and where its stderr goes."""

    process: subprocess.Popen[str]
    errors: IO[bytes]


_children: list[_Child] = []


def _load_cdf_child() -> _Child:
    """The running child, started (again) when there is none: one per test process."""
    if not _children or _children[-1].process.poll() is not None:
        errors = tempfile.TemporaryFile()
        process = subprocess.Popen(
            [sys.executable, "-c", _LOAD_CDF],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        _children.append(_Child(process, errors))
    return _children[-1]


def _deltalake_load_cdf(path: Path, start: int, end: int) -> pa.Table:
    child = _load_cdf_child()
    assert child.process.stdin is not None and child.process.stdout is not None
    with tempfile.TemporaryDirectory(prefix="load-cdf-") as folder:
        out = Path(folder) / "changes.arrow"
        request = {"path": str(path), "start": start, "end": end, "out": str(out)}
        try:
            child.process.stdin.write(json.dumps(request) + "\n")
            child.process.stdin.flush()
            answer = child.process.stdout.readline().strip()
        except BrokenPipeError:
            answer = ""
        if not answer:
            child.process.wait()
            child.errors.seek(0)
            error = child.errors.read().decode(errors="replace").strip().splitlines()
            raise AssertionError(
                f"deltalake load_cdf({start}..{end}) ended its process "
                f"(exit {child.process.returncode}): " + " ".join(error[:2])
            )
        if answer != "ok":
            raise AssertionError(f"deltalake load_cdf({start}..{end}) failed: {answer}")
        with pa.OSFile(str(out)) as source:
            return pa.ipc.open_file(source).read_all()


def _kernel_table_changes(path: Path, start: int, end: int) -> pa.Table:
    uri = path.absolute().as_uri()
    engine = PythonInterface(uri)
    scan = TableChangesScanBuilder(Table(uri), engine, start, end).build()
    return scan.execute(engine).read_all()


CHANGE_READERS = (
    ChangeReader("deltalake-load_cdf", _deltalake_load_cdf),
    ChangeReader("delta-kernel", _kernel_table_changes),
)


def _canonical(data: pa.Table, table: CanonicalTable) -> pa.Table:
    return data.select(table.column_names).cast(arrow_schema(table))


def row_multiset(data: pa.Table, table: CanonicalTable) -> Counter[tuple]:
    """The rows of ``data`` (any column order and extra columns) as a multiset."""
    return Counter(
        tuple(row.values()) for row in _canonical(data, table).to_pylist(maps_as_pydicts="strict")
    )


def change_multiset(data: pa.Table, table: CanonicalTable) -> Counter[tuple]:
    """A change feed as a multiset of ``(commit version, change type, *row)``."""
    versions = data.column(COMMIT_VERSION).to_pylist()
    kinds = data.column(CHANGE_TYPE).to_pylist()
    rows = _canonical(data, table).to_pylist()
    return Counter(
        (version, kind, *row.values())
        for version, kind, row in zip(versions, kinds, rows, strict=True)
    )


def store_changes(
    before: pa.Table | None,
    after: pa.Table,
    table: CanonicalTable,
    version: int,
    *,
    replaced: bool = False,
) -> Counter[tuple]:
    """What a change feed must show for ``version``, which took the table's rows from
    ``before`` (None: no table yet) to ``after``: rows matched by the table's key, an
    update as its pre- and post-image, an unchanged row not at all. A version that
    ``replaced`` the table whole shows every old row deleted and every new one inserted."""
    if replaced and before is not None:
        deleted = row_multiset(before, table).elements()
        inserted = row_multiset(after, table).elements()
        return Counter((version, DELETE, *row) for row in deleted) + Counter(
            (version, INSERT, *row) for row in inserted
        )

    def by_key(data: pa.Table | None) -> dict[tuple, tuple]:
        if data is None:
            return {}
        rows = _canonical(data, table).to_pylist()
        return {tuple(row[name] for name in table.key): tuple(row.values()) for row in rows}

    old, new = by_key(before), by_key(after)
    changes: Counter[tuple] = Counter()
    for key in old.keys() - new.keys():
        changes[(version, DELETE, *old[key])] += 1
    for key in new.keys() - old.keys():
        changes[(version, INSERT, *new[key])] += 1
    for key in old.keys() & new.keys():
        if old[key] != new[key]:
            changes[(version, PREIMAGE, *old[key])] += 1
            changes[(version, POSTIMAGE, *new[key])] += 1
    return changes
