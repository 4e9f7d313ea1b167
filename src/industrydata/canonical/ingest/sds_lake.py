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
manifest (larger than ``ReadLimits.max_manifest_bytes``, nested deeper than
``max_manifest_depth``, or not shaped as a CDM manifest), an entity defined by another
schema, a partition folder or file that is missing or not UTF-8, a row with the wrong
number of fields or longer than the CSV reader's block (1 MiB), more partition files than
``max_members``. A value of the wrong type (a date-time, boolean or integer that does not
parse) rejects its row, and the rest loads, unless a file loses more rows than
``ReadLimits.refusal`` allows: the snapshot replaces the tenant's roster, and a broken one
would empty it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, NoReturn

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Engine, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from ...errors import LoadError, LoadProblem
from ...observability import observe_import_rows
from ..arrow import arrow_schema
from ..changes import ChangeStamp, begin_change
from ..sql import ROW_NUMBER_COLUMN, ROW_VERSION_COLUMN, TENANT_COLUMN, sql_table
from ..tables import CANONICAL_TABLES, SCHEMA_VERSION, CanonicalTable, ColumnType
from ._limits import DEFAULT_LIMITS, ReadLimits
from ._problems import ProblemLog, start_report_file
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
    report_path: Path | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> LoadReport:
    """Replace ``tenant_id``'s canonical data with the rows of an SDS lake-export snapshot.

    Args:
        engine: the canonical store.
        snapshot_folder: a snapshot folder of the export (``…/roster/2021-09-05T06-16-22``),
            holding ``snapshot.roster.manifest.cdm.json``.
        tenant_id: whose canonical data the snapshot becomes.
        progress: called while each part file is read, and once when it is done.
        report_path: a CSV file to write every problem to, as it is found.
        limits: the bounds of reading (``ReadLimits``).

    Returns:
        Rows written per table, rows read per part file (by path inside the snapshot
        folder), and the rejected rows.

    Raises:
        LoadError: the snapshot is not readable as a whole (see the module docstring);
            nothing was written.
    """
    folder = Path(snapshot_folder)
    if report_path is not None:
        start_report_file(report_path)
    problems = ProblemLog(limits, report_path)
    try:
        try:
            entities = _entities(folder, limits, problems)
        except LoadError as error:
            problems.extend(error.problems)
            raise
        with engine.begin() as connection:
            load = _LakeLoad(connection, folder, tenant_id, problems, progress, limits)
            report = load.run(entities)
        observe_import_rows("sds-lake", sum(report.rows.values()))
        return report
    finally:
        problems.close()


@dataclass(frozen=True)
class _Entity:
    """A canonical table of the snapshot and its part files, in the order they are read."""

    table: CanonicalTable
    files: tuple[Path, ...]


def _entities(folder: Path, limits: ReadLimits, warnings: ProblemLog) -> list[_Entity]:
    """The snapshot's canonical tables and their files; warnings about entities that cannot
    be loaded (unknown to the canonical schema, or absent from the snapshot) go to
    ``warnings``."""
    manifest = _manifest(folder, limits)
    known = {table.name: table for table in CANONICAL_TABLES}
    errors: list[LoadProblem] = []
    entities: list[_Entity] = []
    files_found = 0
    for entity in _objects(manifest, "entities"):
        name = entity.get("entityName")
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
            files = _partition_files(folder, entity, limits.max_members - files_found)
        except _NotFound as missing:
            errors.append(_structural(SNAPSHOT_MANIFEST, name, str(missing)))
            continue
        files_found += len(files)
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
    return entities


def _manifest(folder: Path, limits: ReadLimits) -> dict[str, Any]:
    """The manifest, read whole only when it is small enough and parsed only as deep as
    ``limits`` allow (``json`` refuses a deeper one with ``RecursionError``, caught)."""
    path = folder / SNAPSHOT_MANIFEST
    try:
        with path.open("rb") as handle:
            text = handle.read(limits.max_manifest_bytes + 1)
    except FileNotFoundError:
        problem = _structural(SNAPSHOT_MANIFEST, None, "the snapshot manifest is missing")
        raise LoadError(f"{folder} is not a snapshot folder", problems=[problem]) from None
    except OSError as exc:
        _malformed(f"the snapshot manifest cannot be read ({exc.strerror or exc})")
    if len(text) > limits.max_manifest_bytes:
        _malformed(f"the snapshot manifest is larger than {limits.max_manifest_bytes:,} bytes")
    try:
        document = json.loads(text)
    except RecursionError:
        _malformed(f"the snapshot manifest nests deeper than {limits.max_manifest_depth} levels")
    except ValueError as exc:
        _malformed(f"the snapshot manifest is not readable JSON: {exc}")
    if _depth(document) > limits.max_manifest_depth:
        _malformed(f"the snapshot manifest nests deeper than {limits.max_manifest_depth} levels")
    if not isinstance(document, dict) or not isinstance(document.get("entities"), list):
        _malformed("the manifest lists no entities")
    return document


def _depth(document: Any) -> int:
    """How deep arrays and objects nest in a parsed JSON document (without recursion)."""
    deepest = 0
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in value)
    return deepest


def _objects(container: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The list of JSON objects at ``key`` (none when absent); anything else is malformed."""
    value = container.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        _malformed(f"{key} in the snapshot manifest is not a list of objects")
    return value


def _list(container: dict[str, Any], key: str) -> list[Any]:
    value = container.get(key, [])
    if not isinstance(value, list):
        _malformed(f"{key} in the snapshot manifest is not a list")
    return value


def _text(container: dict[str, Any], key: str) -> str | None:
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        _malformed(f"{key} in the snapshot manifest is not a string")
    return value


def _malformed(reason: str) -> NoReturn:
    problem = _structural(SNAPSHOT_MANIFEST, None, reason)
    raise LoadError(f"the snapshot manifest cannot be read: {reason}", problems=[problem])


def _partition_encodings(entity: dict[str, Any]) -> set[str]:
    """The file formats the entity's partitions declare with CDM ``is.partition.format.*``
    traits; none declared means CSV, the CDM default (the SDS export declares none)."""
    partitions = [*_objects(entity, "dataPartitions"), *_objects(entity, "dataPartitionPatterns")]
    traits = [
        str(trait.get("traitReference", "")) if isinstance(trait, dict) else str(trait)
        for partition in partitions
        for trait in _list(partition, "exhibitsTraits")
    ]
    return {
        trait.removeprefix(_FORMAT_TRAIT).lower()
        for trait in traits
        if trait.startswith(_FORMAT_TRAIT)
    }


class _NotFound(Exception):
    """A partition location of the manifest that is not in the snapshot."""


def _partition_files(folder: Path, entity: dict[str, Any], most: int) -> tuple[Path, ...]:
    """Explicit ``dataPartitions`` and the files matched by ``dataPartitionPatterns``: at
    most ``most`` files are looked at."""
    files: list[Path] = []
    for partition in _objects(entity, "dataPartitions"):
        path = _corpus_path(folder, _text(partition, "location") or "")
        if not path.is_file():
            raise _NotFound(f"partition {partition.get('location')} is missing")
        files.append(path)
    for pattern in _objects(entity, "dataPartitionPatterns"):
        root = _corpus_path(folder, _text(pattern, "rootLocation") or "")
        if not root.is_dir():
            raise _NotFound(f"partition folder {pattern.get('rootLocation')} is missing")
        expression = _text(pattern, "regularExpression")
        glob = _text(pattern, "globPattern")
        try:
            matcher = re.compile(expression) if expression is not None else None
        except re.error as exc:
            _malformed(f"regularExpression {expression!r} is not a regular expression: {exc}")
        candidates = []
        for candidate in root.rglob("*"):
            if candidate.is_file():
                candidates.append(candidate)
                if len(candidates) + len(files) > most:
                    _malformed("the snapshot has too many partition files")
        for path in sorted(candidates):
            relative = "/" + path.relative_to(root).as_posix()
            if matcher is not None:
                matched = matcher.search(relative) is not None
            else:
                matched = glob is None or fnmatch.fnmatch(relative, glob)
            if matched:
                files.append(path)
    if len(files) > most:
        _malformed("the snapshot has too many partition files")
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
        problems: ProblemLog,
        progress: ProgressCallback | None,
        limits: ReadLimits,
    ) -> None:
        self.connection = connection
        self.progress = progress
        self.folder = folder
        self.tenant_id = tenant_id
        self.problems = problems
        self.limits = limits
        self.rows: dict[str, int] = {table.name: 0 for table in CANONICAL_TABLES}
        self.records: dict[str, int] = {}
        self.rejected: dict[str, int] = {}

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
            problems=self.problems.kept,
            rejected=self.rejected,
            problem_counts=self.problems.counts,
        )

    def _load_file(self, writer: _TableWriter, path: Path, file: str) -> int:
        table = writer.table
        malformed = ProblemLog(self.limits)
        rows = rejected_rows = 0
        size = path.stat().st_size
        with path.open("rb") as handle:
            for text in _text_batches(handle, size, file, table, malformed):
                typed, lines, rejected = _typed(text, table, file, first_line=rows + 1)
                self.problems.extend(rejected)
                rejected_rows += text.num_rows - typed.num_rows
                rejected_rows += writer.insert(typed, file, lines, problems=self.problems)
                rows += text.num_rows
                if rejected_rows > self.limits.max_rejected_records:
                    limit = self.limits.max_rejected_records
                    self._refuse(file, f"more than {limit:,} rows rejected")
                self._progress(FileProgress(file, rows, handle.tell(), size))
        rejected_rows += writer.flush(self.problems)
        if malformed.kept:
            self.problems.extend(malformed.kept)
            raise LoadError(
                f"{file} does not hold {table.name} rows ({len(malformed):,} malformed rows)",
                problems=malformed.kept,
            )
        self.rejected[file] = rejected_rows
        reason = self.limits.refusal(rows, rejected_rows, required=False)
        if reason is not None:
            self._refuse(file, reason)
        self._progress(FileProgress(file, rows, size, size, done=True))
        return rows

    def _refuse(self, file: str, reason: str) -> NoReturn:
        """Refuse the snapshot: a file lost too many rows (``ReadLimits``)."""
        problem = _structural(file, None, f"{reason}; snapshot refused")
        self.problems.append(problem)
        raise LoadError(f"{file}: {reason}; nothing was changed", problems=[problem])

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
    handle: BinaryIO, size: int, file: str, table: CanonicalTable, malformed: ProblemLog
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
        problems: ProblemLog,
    ) -> int:
        """Queue the rows of ``batch`` (found on ``lines`` of ``file``); full chunks are
        written at once, their conflicts added to ``problems``. Returns the rows of the
        chunks written that conflicted (not loaded)."""
        conflicts = 0
        for row, line in zip(_python_rows(batch), lines, strict=True):
            self._pending.append((row, file, line))
            if len(self._pending) >= _CHUNK_ROWS:
                conflicts += self.flush(problems)
        return conflicts

    def flush(self, problems: ProblemLog) -> int:
        """Write the queued rows; returns how many conflicted (not loaded)."""
        if not self._pending:
            return 0
        chunk, self._pending = self._pending, []
        numbers = self._stamp.row_numbers(len(chunk))
        parameters = [
            self._parameters(row, number)
            for (row, _, _), number in zip(chunk, numbers, strict=True)
        ]
        inserted = self._connection.exec_driver_sql(self._statement, parameters).rowcount
        self.inserted += inserted
        if inserted == len(chunk):
            return 0
        conflicts = self._conflicts(chunk)
        problems.extend(conflicts)
        return len(conflicts)

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
