"""One CSV record being validated field by field, noting problems where they are found.

Every check returns the normalised value. A failed check on a value the record cannot do
without notes an error and rejects the record; a bad optional value that can simply be left
out (a malformed email or phone number, a reference to a record that does not exist) notes a
warning and is dropped. Matching follows SDS: ids are case-sensitive, enum values
case-insensitive (stored as the vocabulary spells them), a one-digit grade matches its
two-digit code, dates are ISO 8601, booleans ``true``/``false`` in any case, phone numbers
E.164 once common punctuation is removed.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache

from ...errors import LoadProblem
from ..vocabulary import REF_DEFINITIONS, ref_id
from ._keys import KeyLookup
from ._problems import ProblemLog

__all__ = ["Record", "ref_code"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{1,14}$")
_PHONE_PUNCTUATION = str.maketrans("", "", "()- .")
_CODES = {str(ref.id): ref.code for ref in REF_DEFINITIONS}
_PADDED_TYPES = frozenset({"RefGradeLevel"})


def ref_code(ref_id_text: str) -> str:
    """The vocabulary code of a RefDefinition id (as stored in ``Ref*Id`` columns)."""
    return _CODES[ref_id_text]


class Record:
    """A data record of ``file`` starting at physical ``line``, with its values by header."""

    __slots__ = ("file", "line", "values", "problems", "rejected")

    def __init__(
        self, file: str, line: int, values: dict[str, str], problems: ProblemLog
    ) -> None:
        self.file = file
        self.line = line
        self.values = values
        self.problems = problems
        self.rejected = False

    def error(self, column: str | None, value: str | None, reason: str) -> None:
        """Reject the record."""
        self.rejected = True
        self.problems.append(LoadProblem("error", self.file, self.line, column, value, reason))

    def warning(self, column: str, value: str, reason: str) -> None:
        """Keep the record without this value."""
        self.problems.append(LoadProblem("warning", self.file, self.line, column, value, reason))

    def text(self, column: str, *, required: bool = False) -> str:
        value = self.values.get(column, "")
        if required and not value:
            self.error(column, value, "a value is required")
        return value

    def enum(self, column: str, ref_type: str, *, required: bool = False) -> str:
        """The RefDefinition id (as text) of an enum value, or "" when absent or invalid."""
        value = self.text(column, required=required)
        return self._ref(column, value, ref_type) if value else ""

    def enums(self, column: str, ref_type: str) -> list[str]:
        """RefDefinition ids of a comma-separated enum list, without repeats."""
        ids: list[str] = []
        for part in _split(self.text(column)):
            found = self._ref(column, part, ref_type)
            if found and found not in ids:
                ids.append(found)
        return ids

    def date(self, column: str, *, required: bool = False) -> str:
        """An ISO 8601 date as ``YYYY-MM-DD``, or "" when absent or invalid."""
        value = self.text(column, required=required)
        if not value:
            return ""
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value).date().isoformat()
        except ValueError:
            self.error(column, value, "not an ISO 8601 date (YYYY-MM-DD)")
            return ""

    def boolean(self, column: str, *, required: bool = False) -> bool | None:
        value = self.text(column, required=required)
        if not value:
            return None
        folded = value.casefold()
        if folded in ("true", "false"):
            return folded == "true"
        self.error(column, value, "not a boolean (true or false)")
        return None

    def reference(
        self, column: str, known: KeyLookup, what: str, *, required: bool = False
    ) -> str:
        """The canonical id of the record a source key refers to, or ""."""
        value = self.text(column, required=required)
        if not value:
            return ""
        found = known.get(value)
        if found is not None:
            return found
        if required:
            self.error(column, value, f"no {what} with this sourcedId")
        else:
            self.warning(column, value, f"no {what} with this sourcedId; value left out")
        return ""

    def references(self, column: str, known: KeyLookup, what: str) -> list[str]:
        """Canonical ids of a comma-separated list of optional references, without repeats."""
        ids: list[str] = []
        for part in _split(self.text(column)):
            found = known.get(part)
            if found is None:
                self.warning(column, part, f"no {what} with this sourcedId; value left out")
            elif found not in ids:
                ids.append(found)
        return ids

    def email(self, column: str) -> str:
        """A lower-cased email address, or "" when absent or malformed."""
        value = self.text(column)
        if value and not _EMAIL.match(value):
            self.warning(column, value, "not an email address; value left out")
            return ""
        return value.lower()

    def phone(self, column: str) -> str:
        """An E.164 phone number without punctuation, or "" when absent or malformed."""
        value = self.text(column)
        if not value:
            return ""
        number = value.translate(_PHONE_PUNCTUATION)
        if not _PHONE.match(number):
            self.warning(column, value, "not an E.164 phone number; value left out")
            return ""
        return number

    def _ref(self, column: str, value: str, ref_type: str) -> str:
        found = _ref_text(ref_type, value)
        if not found:
            self.error(column, value, f"not a {ref_type} value")
        return found


@lru_cache(maxsize=4096)
def _ref_text(ref_type: str, value: str) -> str:
    """The id (as text) of an enum value, or "": a load looks the same few values up often."""
    padded = ref_type in _PADDED_TYPES and len(value) == 1 and value.isdigit()
    found = ref_id(ref_type, "0" + value if padded else value)
    return "" if found is None else str(found)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
