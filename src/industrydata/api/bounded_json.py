"""JSON from clients, parsed within a nesting bound.

The standard parser recurses once per nesting level, so a body of a few kilobytes of ``[``
would end in a ``RecursionError`` inside it. The nesting depth is measured first, in linear
time and without recursion, over the raw bytes: strings are cut out (their content cannot
open a level), then the running balance of brackets gives the depth. Size is the reader's
bound (``deps.MAX_BODY_BYTES`` for bodies, the request head for query options).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "JsonNestingError", "nesting_depth", "parse_json"]

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects accepted; the API's own bodies need 3 levels."""

# A string up to its closing quote, or to the end of the input when unterminated. Possessive
# quantifiers and the optional closing quote mean every attempt succeeds without backtracking,
# so the scan stays linear whatever the input.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


class JsonNestingError(ValueError):
    """The document nests arrays and objects deeper than allowed."""


def nesting_depth(raw: bytes) -> int:
    """The deepest level of ``[``/``{`` outside strings (0 for a scalar)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse UTF-8 JSON whose nesting is at most ``max_depth``.

    Raises:
        JsonNestingError: nested deeper than ``max_depth`` (checked before parsing).
        ValueError: not UTF-8 or not JSON (``UnicodeDecodeError``, ``JSONDecodeError``, or an
            integer beyond Python's digit limit).
    """
    text = raw.decode("utf-8")
    if nesting_depth(raw) > max_depth:
        raise JsonNestingError(f"JSON nested deeper than {max_depth} levels is not accepted.")
    return json.loads(text)
