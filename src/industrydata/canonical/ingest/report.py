"""What a load did: rows written per canonical table and the problems found in the files."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import LoadProblem
from ._problems import ProblemKind

__all__ = ["LoadReport"]


@dataclass
class LoadReport:
    """The outcome of one committed load.

    ``rows`` holds, for every canonical table (CDM name), the rows this load wrote (inserted
    or refreshed); ``records`` the data records read per source file and ``rejected`` those of
    them not loaded (errors). ``problems`` holds the first problems in detail (rejected
    records and dropped optional values, up to ``ReadLimits.max_problems_kept``);
    ``problem_counts`` counts every problem by (severity, file, column, reason). The report
    file of the load, when it has one, lists every problem.
    """

    source_system: str
    rows: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    problem_counts: dict[ProblemKind, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Error problems (a rejected record has at least one)."""
        return self._count("error")

    @property
    def warnings(self) -> int:
        """Optional values dropped from records that were kept."""
        return self._count("warning")

    @property
    def rejected_records(self) -> int:
        """Records of all files that were not loaded: non-zero means "loaded with rejected
        records" (the CLI's exit code 2)."""
        return sum(self.rejected.values())

    @property
    def problems_left_out(self) -> int:
        """Problems counted but not in ``problems`` (they are in the report file)."""
        return sum(self.problem_counts.values()) - len(self.problems)

    def _count(self, severity: str) -> int:
        return sum(n for kind, n in self.problem_counts.items() if kind[0] == severity)
