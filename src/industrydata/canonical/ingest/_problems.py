"""The problems of one load, kept in bounded memory however many the files hold.

The first ``max_problems_kept`` are kept in detail, every problem is counted by (severity,
file, column, reason), and, when the load has a report file, every problem is appended to it
as it is found: the file is the full record, the memory holds a sample and the counts. A
value is shortened to ``SHOWN_VALUE_CHARS`` characters wherever it is kept or written.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from ...errors import LoadProblem
from ._limits import ReadLimits

__all__ = ["REPORT_COLUMNS", "SHOWN_VALUE_CHARS", "ProblemKind", "ProblemLog", "start_report_file"]

REPORT_COLUMNS = ("severity", "file", "line", "column", "value", "reason")
"""The header of a report file, one problem per row after it."""

SHOWN_VALUE_CHARS = 200

OTHER_PROBLEMS = "other problems"
"""The reason problems are counted under once ``max_problem_kinds`` kinds are counted."""

ProblemKind = tuple[str, str, str | None, str]
"""(severity, file, column, reason): what problems are counted by."""


def start_report_file(path: Path) -> None:
    """Create (or empty) the report file at ``path`` with its header row."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(REPORT_COLUMNS)


class ProblemLog:
    """Collects problems: a bounded sample, counts by kind, and the report file if any.

    A process appends to the report file (``start_report_file`` created it), so the reader
    process of a large upload writes its problems there itself. ``close`` ends the writing.
    """

    def __init__(self, limits: ReadLimits, report_path: Path | None = None) -> None:
        self.kept: list[LoadProblem] = []
        self.counts: dict[ProblemKind, int] = {}
        self._limits = limits
        self._handle: TextIO | None = None
        if report_path is not None:
            self._handle = report_path.open("a", newline="", encoding="utf-8")
            self._writer = csv.writer(self._handle)

    def append(self, problem: LoadProblem) -> None:
        problem = _shortened(problem)
        if len(self.kept) < self._limits.max_problems_kept:
            self.kept.append(problem)
        kind = (problem.severity, problem.file, problem.column, problem.reason)
        if kind not in self.counts and len(self.counts) >= self._limits.max_problem_kinds:
            kind = (problem.severity, problem.file, None, OTHER_PROBLEMS)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self._handle is not None:
            self._writer.writerow(
                (
                    problem.severity,
                    problem.file,
                    problem.line,
                    problem.column,
                    problem.value,
                    problem.reason,
                )
            )

    def extend(self, problems: Iterable[LoadProblem]) -> None:
        for problem in problems:
            self.append(problem)

    def __len__(self) -> int:
        return sum(self.counts.values())

    def __iter__(self) -> Iterator[LoadProblem]:
        """The problems kept in detail."""
        return iter(self.kept)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _shortened(problem: LoadProblem) -> LoadProblem:
    value = problem.value
    if value is None or len(value) <= SHOWN_VALUE_CHARS:
        return problem
    shown = value[:SHOWN_VALUE_CHARS] + f"… ({len(value):,} characters)"
    return LoadProblem(
        problem.severity, problem.file, problem.line, problem.column, shown, problem.reason
    )
