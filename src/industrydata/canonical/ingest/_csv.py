"""Reading SIS CSV files: exact file and header names, UTF-8 with or without BOM, CRLF or LF.

Structure is checked before anything is loaded (a missing required file or header rejects
the whole load); records are then streamed with the physical line they start on (the header
is line 1), as dicts of the headers the file specification knows, values stripped of
surrounding blanks. Columns the specification does not name (such as ``password``) are never
read into a record.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ...errors import LoadError, LoadProblem
from ._record import Record
from ._source import Upload

__all__ = ["CsvFile", "RecordReader", "check_structure"]

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
    """Structural problems: missing required files, unreadable or incomplete headers."""
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
    """The data records of a checked file; a record of the wrong width is reported, not yielded.

    ``bytes_read`` tells how far into the file reading has come (for progress).
    """

    def __init__(self, upload: Upload, spec: CsvFile, problems: list[LoadProblem]) -> None:
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
        line = 1
        try:
            with self._upload.open(spec.name) as binary:
                self._binary = binary
                handle = io.TextIOWrapper(binary, encoding=_ENCODING, newline="")
                reader = csv.reader(handle, strict=True)
                header = next(reader)
                positions = [(name, header.index(name)) for name in spec.headers if name in header]
                width = len(header)
                for fields in reader:
                    start, line = line + 1, reader.line_num
                    if not fields:
                        continue
                    if len(fields) != width:
                        reason = f"expected {width} fields, found {len(fields)}; record skipped"
                        problems.append(LoadProblem("error", spec.name, start, None, None, reason))
                        continue
                    values = {name: fields[index].strip() for name, index in positions}
                    yield Record(spec.name, start, values, problems)
        except (UnicodeDecodeError, csv.Error) as exc:
            problem = structural(spec.name, line + 1, None, _unreadable(exc))
            raise LoadError(f"{spec.name} cannot be read", problems=[problem]) from None
        finally:
            self._binary = None


def _check_header(upload: Upload, spec: CsvFile) -> list[LoadProblem]:
    try:
        with upload.open(spec.name) as binary:
            handle = io.TextIOWrapper(binary, encoding=_ENCODING, newline="")
            header = next(csv.reader(handle, strict=True), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        return [structural(spec.name, 1, None, _unreadable(exc))]
    if not header:
        return [structural(spec.name, 1, None, "the header line is missing")]
    problems = [
        structural(spec.name, 1, name, "required header is missing")
        for name in spec.required_headers
        if name not in header
    ]
    problems += [
        structural(spec.name, 1, name, "header appears more than once")
        for name in sorted({name for name in header if header.count(name) > 1})
    ]
    return problems


def _unreadable(exc: UnicodeDecodeError | csv.Error) -> str:
    return "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else f"not valid CSV: {exc}"
