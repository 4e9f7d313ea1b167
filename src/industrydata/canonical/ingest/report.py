"""What a load did: rows written per canonical table and the problems found in the files."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import LoadProblem

__all__ = ["LoadReport"]


@dataclass
class LoadReport:
    """The outcome of one committed load.

    ``rows`` holds, for every canonical table (CDM name), the rows this load wrote (inserted
    or refreshed); ``records`` the data records read per source file; ``problems`` the
    rejected records (errors) and dropped optional values (warnings).
    """

    source_system: str
    rows: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """Records rejected."""
        return sum(1 for problem in self.problems if problem.severity == "error")

    @property
    def warnings(self) -> int:
        """Optional values dropped from records that were kept."""
        return sum(1 for problem in self.problems if problem.severity == "warning")
