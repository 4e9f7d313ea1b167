"""Reading SIS CSV files: exact file and header names, UTF-8 with or without BOM, CRLF or LF.

Structure is checked before anything is loaded (a missing required file or header rejects
the whole load); records are then streamed with the physical line they start on (the header
is line 1), as dicts of the headers the file specification knows, values stripped of
surrounding blanks. Columns the specification does not name (such as ``password``) are never
read into a record.

Reading is bounded whatever a file holds: lines are read at most ``max_record_chars`` at a
time and the characters of one record (all its physical lines) are counted as the ``csv``
module takes them, so a record that is too long (a gigabyte of NUL bytes, a field that never
ends) is cut off after ``max_record_chars`` and refuses the upload with one problem: past it,
where the next record starts cannot be told. A header wider than ``max_columns`` refuses the
upload; every check on it is linear.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from ...errors import LoadError, LoadProblem
from ._problems import ProblemLog
from ._record import Record
from ._source import DAMAGED, Upload, damage_reason

__all__ = ["CsvFile", "RecordReader", "check_structure", "structural"]

_ENCODING = "utf-8-sig"


@dataclass(frozen=True)
class CsvFile:
    """A file of a CSV interchange format: its exact name and the headers it may carry."""

    name: str
    required: bool
    required_headers: tuple[str, ...]
    optional_headers: tuple[str, ...] = ()

    @property
    def headers(self) -> tuple[str, ...]:
        return self.required_headers + self.optional_headers


def check_structure(upload: Upload, files: tuple[CsvFile, ...]) -> list[LoadProblem]:
    """Structural problems: missing required files, unreadable, too wide or incomplete
    headers."""
    problems: list[LoadProblem] = []
    for spec in files:
        if spec.name not in upload.names:
            if spec.required:
                problems.append(structural(spec.name, None, None, "required file is missing"))
            continue
        problems.extend(_check_header(upload, spec))
    return problems


def structural(file: str, line: int | None, column: str | None, reason: str) -> LoadProblem:
    """An error that rejects the whole upload."""
    return LoadProblem("error", file, line, column, None, reason)


class RecordReader:
    """The data records of a checked file; a record of the wrong width is reported and
    yielded already rejected, without values.

    ``bytes_read`` tells how far into the file reading has come (for progress).

    Raises (while iterating):
        LoadError: the file cannot be read on (not UTF-8, not CSV, a record too long, a
            damaged zip member); the problem is also added to ``problems``.
    """

    def __init__(self, upload: Upload, spec: CsvFile, problems: ProblemLog) -> None:
        self.spec = spec
        self.bytes_total = upload.sizes[spec.name]
        self._upload = upload
        self._problems = problems
        self._binary: BinaryIO | None = None

    @property
    def bytes_read(self) -> int:
        return self._binary.tell() if self._binary is not None else 0

    def __iter__(self) -> Iterator[Record]:
        spec, problems = self.spec, self._problems
        try:
            with self._upload.open(spec.name) as binary:
                self._binary = binary
                rows = _csv_records(binary, self._upload.limits.max_record_chars)
                _, header = next(rows)
                positions = [(name, header.index(name)) for name in spec.headers if name in header]
                width = len(header)
                for line, fields in rows:
                    if not fields:
                        continue
                    if len(fields) != width:
                        record = Record(spec.name, line, {}, problems)
                        reason = f"expected {width} fields, found {len(fields)}; record skipped"
                        record.error(None, None, reason)
                        yield record
                        continue
                    values = {name: fields[index].strip() for name, index in positions}
                    yield Record(spec.name, line, values, problems)
        except _Unreadable as unreadable:
            problem = structural(spec.name, unreadable.line, None, unreadable.reason)
        except DAMAGED as exc:
            problem = structural(spec.name, None, None, damage_reason(exc))
        else:
            return
        finally:
            self._binary = None
        problems.append(problem)
        raise LoadError(f"{spec.name} cannot be read: {problem.reason}", problems=[problem])


class _Unreadable(Exception):
    """Reading a file cannot go on past ``line``."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


class _RecordTooLong(Exception):
    """A record has more characters than the limit."""


class _BoundedLines:
    """The physical lines of ``handle`` as the ``csv`` module pulls them, never more than
    ``limit`` characters of one record in memory: ``record_chars`` counts the characters of
    the record being read (the caller zeroes it after each record)."""

    def __init__(self, handle: TextIO, limit: int) -> None:
        self._handle = handle
        self._limit = limit
        self.record_chars = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._handle.readline(self._limit - self.record_chars + 1)
        if not line:
            raise StopIteration
        self.record_chars += len(line)
        if self.record_chars > self._limit:
            raise _RecordTooLong
        return line


def _csv_records(binary: BinaryIO, limit: int) -> Iterator[tuple[int, list[str]]]:
    """Every record of the file (the header first) with the physical line it starts on.

    Raises:
        _Unreadable: at the first record that cannot be read.
    """
    lines = _BoundedLines(io.TextIOWrapper(binary, encoding=_ENCODING, newline=""), limit)
    reader = csv.reader(lines, strict=True)
    line = 0
    try:
        for fields in reader:
            yield line + 1, fields
            line = reader.line_num
            lines.record_chars = 0
    except UnicodeDecodeError:
        raise _Unreadable(line + 1, "not valid UTF-8") from None
    except csv.Error as exc:
        raise _Unreadable(line + 1, f"not valid CSV: {exc}") from None
    except _RecordTooLong:
        raise _Unreadable(line + 1, f"a record longer than {limit:,} characters") from None
    except DAMAGED as exc:
        raise _Unreadable(line + 1, damage_reason(exc)) from None


def _check_header(upload: Upload, spec: CsvFile) -> list[LoadProblem]:
    limits = upload.limits
    try:
        with upload.open(spec.name) as binary:
            header = next(_csv_records(binary, limits.max_record_chars), (1, None))[1]
    except _Unreadable as unreadable:
        return [structural(spec.name, unreadable.line, None, unreadable.reason)]
    except DAMAGED as exc:
        return [structural(spec.name, 1, None, damage_reason(exc))]
    if not header:
        return [structural(spec.name, 1, None, "the header line is missing")]
    if len(header) > limits.max_columns:
        reason = f"the header has {len(header):,} columns; at most {limits.max_columns:,}"
        return [structural(spec.name, 1, None, reason)]
    present = Counter(header)
    problems = [
        structural(spec.name, 1, name, "required header is missing")
        for name in spec.required_headers
        if name not in present
    ]
    problems += [
        structural(spec.name, 1, name, "header appears more than once")
        for name in sorted(name for name, count in present.items() if count > 1)
    ]
    return problems
