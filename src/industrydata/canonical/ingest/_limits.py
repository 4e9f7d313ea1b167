"""The bounds a load keeps whatever a tenant's files hold: one place for every limit.

Memory is bounded by design, not by the size of an upload: files are streamed, a CSV record
is read at most ``max_record_chars`` at a time (a longer one refuses the upload before it is
buffered whole), problems are kept in detail up to ``max_problems_kept`` and counted beyond.
The other limits bound work that would otherwise grow with something a tenant chooses (the
width of a header, the number of files in an archive). A big honest upload (a district of
500,000 students is several GB) streams through all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "ReadLimits"]


@dataclass(frozen=True)
class ReadLimits:
    """How far a load reads before it refuses an upload, and how much it keeps."""

    max_record_chars: int = 1 << 20
    """Characters of one CSV record (all its physical lines); a longer record refuses the
    upload. The ``csv`` module's own field limit (131,072 characters) also applies."""
    max_columns: int = 1_000
    """Columns of a header line; SDS and OneRoster files have fewer than 40."""
    max_members: int = 1_000
    """Files in an upload folder or entries in a zip archive (OneRoster has 14 files)."""
    max_name_chars: int = 255
    """Characters of a file name in an upload."""
    max_problems_kept: int = 1_000
    """Problems kept in detail in the report; the rest are counted (and all are written to
    the report file when one is given)."""
    max_problem_kinds: int = 1_000
    """Distinct (severity, file, column, reason) counts kept; further kinds are counted
    together per file as "other problems"."""
    max_rejected_fraction: float = 0.10
    """A file with more rejected records than this fraction of its records refuses the
    upload (and one whose records are all rejected, always)."""
    tolerated_rejections: int = 10
    """Rejected records a file may have whatever the fraction: a few typos in a small file
    are not a broken export."""
    max_rejected_records: int = 100_000
    """Rejected records of one file that refuse the upload as soon as they are counted: no
    working export loses that many, and reading on would only grow the report file (a zip
    of 53 KB holds 25 million rejected records)."""
    max_manifest_bytes: int = 4 << 20
    """Size of an SDS lake snapshot manifest (an SDS export's is about 100 KB)."""
    max_manifest_depth: int = 32
    """Nesting of JSON arrays and objects in an SDS lake snapshot manifest (CDM uses 6)."""
    max_key_memory: int = 128 << 20
    """Bytes the keys a load remembers (duplicates, references) may take in memory; beyond
    it they spill to sorted runs in temporary files (``_keys.KeyBudget``): slower look-ups,
    flat memory. A table's slots take at most a quarter of it: 800,000 keys with line
numbers, 1.6 million without."""

    def refusal(self, records: int, rejected: int, *, required: bool) -> str | None:
        """Why a file with ``rejected`` of its ``records`` rejected refuses the upload, or
        None: a full upload marks every stored record it lacks inactive, so loading a broken
        export would empty the roster. A required file whose records are all rejected, or
        that has none, refuses it whatever its size."""
        if required and records == 0:
            return "no records in a required file"
        if required and rejected == records:
            return f"all {records:,} records rejected"
        if rejected > self.tolerated_rejections and rejected > self.max_rejected_fraction * records:
            share = f"{self.max_rejected_fraction:.0%}"
            return f"{rejected:,} of {records:,} records rejected, more than {share}"
        return None


DEFAULT_LIMITS = ReadLimits()
