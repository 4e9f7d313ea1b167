"""Arrow batches to ``sdsCsv`` lines, column-wise with pyarrow.compute (no per-row Python).

The rules are those of the reference SDS export: no header, ``,`` between fields, LF after
every row, UTF-8. Null is written as nothing; the empty string as ``""``; a string holding
``"``, ``,``, CR or LF is quoted with inner quotes doubled (RFC 4180); every other string
bare. Booleans are ``true``/``false``, date-times ``2021-09-05T06:16:22.000Z``, integers in
decimal.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

_NEEDS_QUOTES = '[",\r\n]'
_SPECIAL_BYTES = (b'"', b",", b"\r", b"\n")
_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # %S of a millisecond timestamp carries ".000"


def encode_csv(batch: pa.RecordBatch) -> pa.Buffer:
    """The rows of ``batch`` (in a canonical Arrow schema) as CSV bytes."""
    if batch.num_rows == 0:
        return pa.py_buffer(b"")
    fields = [_field_text(column).fill_null("") for column in batch.columns]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*fields, ","), "\n", "")
    return _character_data(lines)


def _field_text(column: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_string(kind):
        return _quoted_where_needed(column)
    if pa.types.is_timestamp(kind):
        return _formatted_times(column)
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "true", "false")
    if pa.types.is_integer(kind):
        return column.cast(pa.string())
    raise TypeError(f"no sdsCsv text form for Arrow type {kind}")


def _formatted_times(column: pa.Array) -> pa.Array:
    # strftime costs about a microsecond a value, and a table's date-times are mostly a few
    # load times repeated: format each distinct value once, then gather.
    encoded = pc.dictionary_encode(column)
    return pc.strftime(encoded.dictionary, format=_DATETIME_FORMAT).take(encoded.indices)


def _quoted_where_needed(column: pa.Array) -> pa.Array:
    needs_quotes = pc.equal(column, "")
    if _may_need_escaping(column):
        needs_quotes = pc.or_kleene(needs_quotes, pc.match_substring_regex(column, _NEEDS_QUOTES))
    if not pc.any(needs_quotes).as_py():
        return column
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
    return pc.if_else(needs_quotes, quoted, column)


def _may_need_escaping(column: pa.Array) -> bool:
    """A screen over the column's raw character bytes, twenty times cheaper than the regex;
    a false alarm (bytes of sliced-off rows) only costs the exact test."""
    data = column.buffers()[2]
    raw = data.to_pybytes() if data is not None else b""
    return any(special in raw for special in _SPECIAL_BYTES)


def _character_data(lines: pa.StringArray) -> pa.Buffer:
    """The concatenated values of a null-free string array, without copying them."""
    _, offsets_buffer, data = lines.buffers()
    offsets = pa.Array.from_buffers(
        pa.int32(), len(lines) + 1, [None, offsets_buffer], offset=lines.offset
    )
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    return data.slice(start, end - start)
