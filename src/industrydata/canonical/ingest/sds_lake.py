"""Loading a School Data Sync lake-export snapshot into the canonical store, as it is.

For tenants moving from SDS: the snapshot folder (``roster/<yyyy-MM-ddTHH-mm-ss>/``) becomes
the tenant's canonical data with SDS's own ids, FirstSeen/LastSeen and flags, so the next
export continues where SDS stopped. The snapshot is the tenant's whole roster: the tenant's
canonical rows are replaced, in one transaction.

The snapshot manifest says where each entity's partition files are. The files are
headerless CSV whose columns are those of ``CANONICAL_TABLES`` in order (schema
``roster.v0.3.2``): an unquoted empty field is null, ``""`` the empty string. They are
streamed with ``pyarrow.csv``, every column read as text first (the only way to tell the two
apart), then cast column-wise to ``arrow_schema(table)``, and inserted in chunks with
``INSERT ... ON CONFLICT DO NOTHING``. A chunk that inserts fewer rows than it holds is
compared with the stored rows: a row equal to the stored one repeats it verbatim (SDS's own
Enrollment files do) and is loaded once; a row with the same key but other values is a
conflicting duplicate, reported as an error and not loaded (the first row wins).

The load takes one change version (``canonical.changes``) for the rows it inserts, each with
a fresh row number; the rows it replaces leave tombstones through the store's delete
triggers.

Structural problems reject the whole load and change nothing: a missing or unreadable
manifest, an entity defined by another schema, a partition folder or file that is missing or
not UTF-8, a row with the wrong number of fields. A value of the wrong type (a date-time,
boolean or integer that does not parse) rejects its row, and the rest loads.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Engine, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from ...errors import LoadError, LoadProblem
from ..arrow import arrow_schema
from ..changes import ChangeStamp, begin_change
from ..sql import ROW_NUMBER_COLUMN, ROW_VERSION_COLUMN, TENANT_COLUMN, sql_table
from ..tables import CANONICAL_TABLES, SCHEMA_VERSION, CanonicalTable, ColumnType
from .progress import FileProgress, ProgressCallback
from .report import LoadReport

__all__ = ["SNAPSHOT_MANIFEST", "load_sds_lake"]

SNAPSHOT_MANIFEST = "snapshot.roster.manifest.cdm.json"
"""The file that makes a folder of the SDS lake export a snapshot."""

_SCHEMA_DOCUMENT = f"roster.v{SCHEMA_VERSION}.cdm.json"
_LOCAL = "local:/"
_FORMAT_TRAIT = "is.partition.format."
_CHUNK_ROWS = 5000
_BLOCK_BYTES = 1 << 20
_SHOWN_CHARACTERS = 200
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_TYPE_NAMES = {
    ColumnType.DATETIME: "an ISO 8601 date-time",
    ColumnType.BOOLEAN: "a boolean (true or false)",
    ColumnType.INT32: "a 32-bit integer",
}
# Date-times are parsed at the finest precision the store keeps, then cut to the schema's.
_PARSED_TIME = pa.timestamp("us", tz="UTC")


def load_sds_lake(
    engine: Engine,
    snapshot_folder: Path,
    *,
    tenant_id: str,
    progress: ProgressCallback | None = None,
) -> LoadReport:
    """Replace ``tenant_id``'s canonical data with the rows of an SDS lake-export snapshot.

    Args:
        engine: the canonical store.
        snapshot_folder: a snapshot folder of the export (``…/roster/2021-09-05T06-16-22``),
            holding ``snapshot.roster.manifest.cdm.json``.
        tenant_id: whose canonical data the snapshot becomes.
        progress: called while each part file is read, and once when it is done.

    Returns:
        Rows written per table, rows read per part file (by path inside the snapshot
        folder), and the rejected rows.

    Raises:
        LoadError: the snapshot is not readable as a whole (see the module docstring);
            nothing was written.
    """
    folder = Path(snapshot_folder)
    entities, problems = _entities(folder)
    with engine.begin() as connection:
        load = _LakeLoad(connection, folder, tenant_id, problems, progress)
        return load.run(entities)


@dataclass(frozen=True)
class _Entity:
    """A canonical table of the snapshot and its part files, in the order they are read."""

    table: CanonicalTable
    files: tuple[Path, ...]


def _entities(folder: Path) -> tuple[list[_Entity], list[LoadProblem]]:
    """The snapshot's canonical tables and their files, and warnings about entities that
    cannot be loaded (unknown to the canonical schema, or absent from the snapshot)."""
    manifest = _manifest(folder)
    known = {table.name: table for table in CANONICAL_TABLES}
    errors: list[LoadProblem] = []
    warnings: list[LoadProblem] = []
    entities: list[_Entity] = []
    for entity in manifest.get("entities", []):
        name = entity.get("entityName") if isinstance(entity, dict) else None
        if not isinstance(name, str):
            errors.append(_structural(SNAPSHOT_MANIFEST, None, "an entity without entityName"))
            continue
        if name not in known:
            reason = f"entity {name} is not a canonical table; not loaded"
            warnings.append(LoadProblem("warning", SNAPSHOT_MANIFEST, None, None, name, reason))
            continue
        schema = str(entity.get("entityPath", "")).rsplit("/", 2)
        if len(schema) == 3 and schema[1] != _SCHEMA_DOCUMENT:
            reason = f"entity {name} is defined by {schema[1]}; only {_SCHEMA_DOCUMENT} is read"
            errors.append(_structural(SNAPSHOT_MANIFEST, name, reason))
            continue
        encodings = _partition_encodings(entity)
        if encodings - {"csv"}:
            reason = f"entity {name} is stored as {', '.join(sorted(encodings))}; only CSV is read"
            errors.append(_structural(SNAPSHOT_MANIFEST, name, reason))
            continue
        try:
            files = _partition_files(folder, entity)
        except _NotFound as missing:
            errors.append(_structural(SNAPSHOT_MANIFEST, name, str(missing)))
            continue
        entities.append(_Entity(known[name], files))
    if errors:
        raise LoadError(
            f"the snapshot cannot be read ({len(errors)} structural problems)", problems=errors
        )
    present = {entity.table.name for entity in entities}
    for name in known:
        if name not in present:
            reason = f"entity {name} is not in the snapshot; the table is left empty"
            warnings.append(LoadProblem("warning", SNAPSHOT_MANIFEST, None, None, name, reason))
    return entities, warnings


def _manifest(folder: Path) -> dict[str, Any]:
    path = folder / SNAPSHOT_MANIFEST
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        problem = _structural(SNAPSHOT_MANIFEST, None, "the snapshot manifest is missing")
        raise LoadError(f"{folder} is not a snapshot folder", problems=[problem]) from None
    except (OSError, ValueError) as exc:
        reason = f"the snapshot manifest is not readable JSON: {exc}"
        raise LoadError(
            "the snapshot manifest cannot be read",
            problems=[_structural(SNAPSHOT_MANIFEST, None, reason)],
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("entities"), list):
        problem = _structural(SNAPSHOT_MANIFEST, None, "the manifest lists no entities")
        raise LoadError("the snapshot manifest cannot be read", problems=[problem])
    return document


def _partition_encodings(entity: dict[str, Any]) -> set[str]:
    """The file formats the entity's partitions declare with CDM ``is.partition.format.*``
    traits; none declared means CSV, the CDM default (the SDS export declares none)."""
    partitions = [*entity.get("dataPartitions", []), *entity.get("dataPartitionPatterns", [])]
    traits = [
        trait.get("traitReference", "") if isinstance(trait, dict) else str(trait)
        for partition in partitions
        for trait in partition.get("exhibitsTraits", [])
    ]
    return {
        trait.removeprefix(_FORMAT_TRAIT).lower()
        for trait in traits
        if trait.startswith(_FORMAT_TRAIT)
    }


class _NotFound(Exception):
    """A partition location of the manifest that is not in the snapshot."""


def _partition_files(folder: Path, entity: dict[str, Any]) -> tuple[Path, ...]:
    """Explicit ``dataPartitions`` and the files matched by ``dataPartitionPatterns``."""
    files: list[Path] = []
    for partition in entity.get("dataPartitions", []):
        path = _corpus_path(folder, partition.get("location", ""))
        if not path.is_file():
            raise _NotFound(f"partition {partition.get('location')} is missing")
        files.append(path)
    for pattern in entity.get("dataPartitionPatterns", []):
        root = _corpus_path(folder, pattern.get("rootLocation", ""))
        if not root.is_dir():
            raise _NotFound(f"partition folder {pattern.get('rootLocation')} is missing")
        expression = pattern.get("regularExpression")
        glob = pattern.get("globPattern")
        for path in sorted(candidate for candidate in root.rglob("*") if candidate.is_file()):
            relative = "/" + path.relative_to(root).as_posix()
            if expression is not None:
                matched = re.search(expression, relative) is not None
            else:
                matched = glob is None or fnmatch.fnmatch(relative, glob)
            if matched:
                files.append(path)
    return tuple(files)


def _corpus_path(folder: Path, location: str) -> Path:
    """A ``local:/`` corpus path: relative to the export's root, two levels above the
    snapshot folder; paths into ``roster/<this snapshot>/`` resolve inside ``folder``, so a
    snapshot folder copied on its own still reads."""
    if not location.startswith(_LOCAL):
        raise _NotFound(f"location {location!r} is not a local: corpus path")
    parts = PurePosixPath(location[len(_LOCAL) :]).parts
    if ".." in parts:
        raise _NotFound(f"location {location!r} leaves the export")
    if parts[:2] == ("roster", folder.name):
        return folder.joinpath(*parts[2:])
    return folder.parent.parent.joinpath(*parts)


class _LakeLoad:
    """One load in progress: the connection, the tenant and the report being filled."""

    def __init__(
        self,
        connection: Connection,
        folder: Path,
        tenant_id: str,
        warnings: list[LoadProblem],
        progress: ProgressCallback | None,
    ) -> None:
        self.connection = connection
        self.progress = progress
        self.folder = folder
        self.tenant_id = tenant_id
        self.problems = list(warnings)
        self.rows: dict[str, int] = {table.name: 0 for table in CANONICAL_TABLES}
        self.records: dict[str, int] = {}

    def run(self, entities: list[_Entity]) -> LoadReport:
        for table in CANONICAL_TABLES:
            sql = sql_table(table)
            self.connection.execute(delete(sql).where(sql.c[TENANT_COLUMN] == self.tenant_id))
        stamp = begin_change(self.connection, self.tenant_id)
        for entity in entities:
            writer = _TableWriter(self.connection, entity.table, stamp)
            for path in entity.files:
                file = _display_path(self.folder, path)
                self.records[file] = self._load_file(writer, path, file)
            self.rows[entity.table.name] += writer.inserted
        return LoadReport(
            source_system=self._source_systems(),
            rows=self.rows,
            records=self.records,
            problems=self.problems,
        )

    def _load_file(self, writer: _TableWriter, path: Path, file: str) -> int:
        table = writer.table
        malformed: list[LoadProblem] = []
        rows = 0
        size = path.stat().st_size
        with path.open("rb") as handle:
            for text in _text_batches(handle, size, file, table, malformed):
                typed, lines, rejected = _typed(text, table, file, first_line=rows + 1)
                self.problems.extend(rejected)
                writer.insert(typed, file, lines, problems=self.problems)
                rows += text.num_rows
                self._progress(FileProgress(file, rows, handle.tell(), size))
        writer.flush(self.problems)
        if malformed:
            raise LoadError(
                f"{file} does not hold {table.name} rows ({len(malformed)} malformed rows)",
                problems=malformed,
            )
        self._progress(FileProgress(file, rows, size, size, done=True))
        return rows

    def _progress(self, progress: FileProgress) -> None:
        if self.progress is not None:
            self.progress(progress)

    def _source_systems(self) -> str:
        sql = sql_table("SourceSystem")
        names = self.connection.execute(
            select(sql.c.Name).where(sql.c[TENANT_COLUMN] == self.tenant_id).order_by(sql.c.Name)
        ).scalars()
        return ", ".join(name for name in names if name) or "School Data Sync lake export"


def _display_path(folder: Path, path: Path) -> str:
    """A part file as problems name it: its path inside the snapshot folder (or the export)."""
    for base in (folder, folder.parent.parent):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.name


def _text_batches(
    handle: BinaryIO, size: int, file: str, table: CanonicalTable, malformed: list[LoadProblem]
) -> Iterator[pa.RecordBatch]:
    """The file's rows as text columns: null for an unquoted empty field, "" for ``""``."""
    if size == 0:
        return
    width = len(table.columns)

    def wrong_width(row: pa_csv.InvalidRow) -> str:
        reason = f"expected {width} fields, found {row.actual_columns}"
        malformed.append(
            LoadProblem("error", file, row.number, None, row.text[:_SHOWN_CHARACTERS], reason)
        )
        return "skip"

    names = table.column_names
    try:
        reader = pa_csv.open_csv(
            handle,
            read_options=pa_csv.ReadOptions(column_names=names, block_size=_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=wrong_width
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        yield from reader
    except pa.ArrowInvalid as exc:
        problem = _structural(file, None, f"not readable as UTF-8 CSV: {exc}")
        raise LoadError(f"{file} cannot be read", problems=[problem]) from None


def _typed(
    text: pa.RecordBatch, table: CanonicalTable, file: str, *, first_line: int
) -> tuple[pa.RecordBatch, Sequence[int], list[LoadProblem]]:
    """The batch in ``arrow_schema(table)`` without the rows holding a value that does not
    parse (each reported with its line and column), and the lines of the rows kept."""
    schema = arrow_schema(table)
    problems: list[LoadProblem] = []
    rejected = pa.array([False] * text.num_rows)
    arrays = []
    for column, field in zip(table.columns, schema, strict=True):
        values = text.column(column.name)
        if column.type is ColumnType.STRING:
            arrays.append(values)
            continue
        # In a typed column, "" can only mean "no value".
        values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        bad = _unparsable(values, field.type)
        if bad:
            for index in bad:
                value = values[index].as_py()
                reason = f"not {_TYPE_NAMES[column.type]}; row not loaded"
                problems.append(
                    LoadProblem("error", file, first_line + index, column.name, value, reason)
                )
            positions = set(bad)
            mask = pa.array([index in positions for index in range(len(values))])
            rejected = pc.or_(rejected, mask)
            values = pc.if_else(mask, pa.scalar(None, pa.string()), values)
        arrays.append(_cast(values, field.type))
    typed = pa.RecordBatch.from_arrays(arrays, schema=schema)
    lines: Sequence[int] = range(first_line, first_line + text.num_rows)
    if problems:
        typed = typed.filter(pc.invert(rejected))
        lines = [line for line, out in zip(lines, rejected.to_pylist(), strict=True) if not out]
        problems.sort(key=lambda problem: problem.line or 0)
    return typed, lines, problems


def _cast(values: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(target):
        return values.cast(_PARSED_TIME).cast(target, safe=False)
    return values.cast(target)


def _unparsable(values: pa.Array, target: pa.DataType) -> list[int]:
    """Positions of values that do not cast; the whole column is tried first (one call),
    value by value only when that fails."""
    try:
        _cast(values, target)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    bad = []
    for index, value in enumerate(values):
        try:
            _cast(pa.array([value.as_py()], pa.string()), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad.append(index)
    return bad


class _TableWriter:
    """Inserts one table's rows in chunks; rows whose key is already stored are compared
    with the stored row (verbatim repeat: skipped; other values: reported)."""

    def __init__(self, connection: Connection, table: CanonicalTable, stamp: ChangeStamp) -> None:
        self.table = table
        self.inserted = 0
        self._connection = connection
        self._stamp = stamp
        self._tenant_id = stamp.tenant_id
        self._sql = sql_table(table)
        dialect = connection.dialect
        self._statement = _insert_sql(connection, table)
        self._processors = [
            self._sql.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in table.column_names
        ]
        self._names = [TENANT_COLUMN, *table.column_names, ROW_NUMBER_COLUMN, ROW_VERSION_COLUMN]
        self._key_positions = [table.column_names.index(name) for name in table.key]
        self._pending: list[tuple[tuple[Any, ...], str, int]] = []

    def insert(
        self,
        batch: pa.RecordBatch,
        file: str,
        lines: Sequence[int],
        *,
        problems: list[LoadProblem],
    ) -> None:
        """Queue the rows of ``batch`` (found on ``lines`` of ``file``); full chunks are
        written at once, their conflicts added to ``problems``."""
        for row, line in zip(_python_rows(batch), lines, strict=True):
            self._pending.append((row, file, line))
            if len(self._pending) >= _CHUNK_ROWS:
                self.flush(problems)

    def flush(self, problems: list[LoadProblem]) -> None:
        """Write the queued rows."""
        if not self._pending:
            return
        chunk, self._pending = self._pending, []
        numbers = self._stamp.row_numbers(len(chunk))
        parameters = [
            self._parameters(row, number)
            for (row, _, _), number in zip(chunk, numbers, strict=True)
        ]
        inserted = self._connection.exec_driver_sql(self._statement, parameters).rowcount
        self.inserted += inserted
        if inserted < len(chunk):
            problems.extend(self._conflicts(chunk))

    def _parameters(self, row: tuple[Any, ...], row_number: int) -> dict[str, Any]:
        values = [
            process(value) if process is not None and value is not None else value
            for process, value in zip(self._processors, row, strict=True)
        ]
        stamped = (self._tenant_id, *values, row_number, self._stamp.version)
        return dict(zip(self._names, stamped, strict=True))

    def _conflicts(self, chunk: list[tuple[tuple[Any, ...], str, int]]) -> list[LoadProblem]:
        """Rows of ``chunk`` whose stored row (same key) holds other values. Every row of
        the chunk either was inserted (it equals the stored row), repeats it verbatim, or
        conflicts with it."""
        keys = {tuple(row[position] for position in self._key_positions) for row, _, _ in chunk}
        key_columns = [self._sql.c[name] for name in self.table.key]
        matches = (
            key_columns[0].in_([key[0] for key in keys])
            if len(key_columns) == 1
            else tuple_(*key_columns).in_(list(keys))
        )
        stored_rows = self._connection.execute(
            select(*(self._sql.c[name] for name in self.table.column_names)).where(
                self._sql.c[TENANT_COLUMN] == self._tenant_id, matches
            )
        )
        stored = {
            tuple(row[position] for position in self._key_positions): tuple(row)
            for row in stored_rows
        }
        problems = []
        for row, file, line in chunk:
            key = tuple(row[position] for position in self._key_positions)
            first = stored[key]
            if first == row:
                continue
            column = next(
                name
                for name, mine, theirs in zip(self.table.column_names, row, first, strict=True)
                if mine != theirs
            )
            value = row[self.table.column_names.index(column)]
            key_text = ", ".join(
                f"{name}={part}" for name, part in zip(self.table.key, key, strict=True)
            )
            reason = f"an earlier row with the same key ({key_text}) has another {column}"
            problems.append(
                LoadProblem(
                    "error",
                    file,
                    line,
                    column,
                    None if value is None else str(value),
                    f"{reason}; row not loaded",
                )
            )
        return problems


def _python_rows(batch: pa.RecordBatch) -> Iterator[tuple[Any, ...]]:
    """Rows as tuples of the values SQLAlchemy stores: date-times naive in UTC."""
    columns = [
        column.cast(pa.timestamp(column.type.unit)).to_pylist()
        if pa.types.is_timestamp(column.type)
        else column.to_pylist()
        for column in batch.columns
    ]
    return zip(*columns, strict=True)


def _insert_sql(connection: Connection, table: CanonicalTable) -> str:
    """``INSERT ... ON CONFLICT DO NOTHING`` with named parameters for the driver's
    executemany (whose row count says how many rows went in)."""
    dialect = connection.dialect
    try:
        insert = _INSERTS[dialect.name]
    except KeyError:
        raise ValueError(f"the canonical store does not support {dialect.name}") from None
    statement = insert(sql_table(table)).on_conflict_do_nothing(
        index_elements=[TENANT_COLUMN, *table.key]
    )
    named = sqlite.dialect(paramstyle="named") if dialect.name == "sqlite" else dialect
    columns = [TENANT_COLUMN, *table.column_names, ROW_NUMBER_COLUMN, ROW_VERSION_COLUMN]
    return str(statement.compile(dialect=named, column_keys=columns))


def _structural(file: str, value: str | None, reason: str) -> LoadProblem:
    return LoadProblem("error", file, None, None, value, reason)
