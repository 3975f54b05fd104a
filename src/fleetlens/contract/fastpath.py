"""The fast decode path: one ``pyarrow.json.read_json`` call over many lines.

Arrow's JSON reader with an explicit schema is type-strict (a string where a number belongs, a
bool where an int belongs, ``1.0`` for an integer, int64 overflow, duplicate keys and bad
surrogates are all errors), but it is laxer than JSON in ways checked here: it accepts
NaN/Infinity (caught by a finiteness check on every float column), several objects on one line
(caught by comparing the row count with the line count), and it does not validate UTF-8 or
survive deep nesting or a bare ``null`` line (``lines.py`` keeps those lines away from it).

``ts`` is a string on some lines and an integer on others, which Arrow cannot hold in one
column. The caller guesses from a sample of lines whether a chunk's ``ts`` are all strings or all
integers (the usual case: one producer's format); the chunk is then read with ``ts`` typed that
way, and Arrow's strictness makes a wrong guess an error, not a wrong value. A mixed chunk (or a
wrong guess) is read in ``split`` mode: every ``"ts":"`` key is renamed to a private key first,
so RFC 3339 strings land in one column and epoch integers in another. (Inside valid JSON,
``"ts":"`` can only be a key; the private key contains NUL, which JSON text can only spell as
``\\u0000``, and lines containing that are screened out.)

Any surprise returns None and the caller bisects the chunk or uses the reference path, so this
path only ever accepts what the reference path accepts, in the same raw shape.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from fleetlens.contract.raw import ATTRS_SCHEMA, RAW_SCHEMA, SCALAR_FIELDS, SRC_ATTRS, SRC_TOP, RawBatch

TS_STR_KEY = "ts\x00s"
_RENAMES = ((b'"ts":"', b'"ts\\u0000s":"'), (b'"ts": "', b'"ts\\u0000s": "'))
TS_MODES = ("str", "int", "split")  # ts all strings / all integers / mixed (renamed key)


def _parse_options(ts_fields: list[pa.Field]) -> pj.ParseOptions:
    return pj.ParseOptions(
        explicit_schema=pa.schema([*(pa.field(n, t) for n, t in SCALAR_FIELDS.items()), *ts_fields]),
        unexpected_field_behavior="infer",
    )


_PARSE = {
    "str": _parse_options([pa.field("ts", pa.string())]),
    "int": _parse_options([pa.field("ts", pa.int64())]),
    "split": _parse_options([pa.field("ts", pa.int64()), pa.field(TS_STR_KEY, pa.string())]),
}
_READ = pj.ReadOptions(block_size=1 << 20, use_threads=True)
_KNOWN = set(_PARSE["split"].explicit_schema.names)
_SCALAR_TYPES = (pa.string(), pa.int64(), pa.float64(), pa.bool_())
_EXACT_INT_LIMIT = 2.0**53  # integral floats beyond this could be promoted int64: let the reference path decide


def parse_chunk(data: bytes | bytearray, rows: pa.Array, ts_mode: str = "split") -> RawBatch | None:
    """Parse NDJSON ``data`` whose object lines are the lines ``rows`` (global line indices).

    ``ts_mode`` is the guess of how ``ts`` is spelled (``TS_MODES``); a wrong guess costs a
    second read in ``split`` mode. Returns None when the chunk cannot be decoded here with
    certainty.
    """
    if ts_mode != "split":
        result = _parse_chunk(data, rows, ts_mode)
        if result is not None:
            return result
    return _parse_chunk(data, rows, "split")


def _parse_chunk(data: bytes | bytearray, rows: pa.Array, ts_mode: str) -> RawBatch | None:
    if ts_mode == "split":
        for old, new in _RENAMES:
            if old in data:
                data = data.replace(old, new)
        if _renamed_beside_plain_ts(data):
            return None
    try:
        table = pj.read_json(pa.BufferReader(data), read_options=_READ, parse_options=_PARSE[ts_mode])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(rows):
        return None
    attr_cols = []
    for name in table.column_names:
        if name in _KNOWN:
            continue
        col = table.column(name).combine_chunks()
        if name == "attrs" and pa.types.is_struct(col.type):
            attr_cols += [("ts" if f.name == TS_STR_KEY else f.name, SRC_ATTRS, c) for f, c in zip(col.type, col.flatten())]
        elif name == "attrs" and col.type != pa.null():
            return None
        else:
            attr_cols.append((name, SRC_TOP, col))
    attr_cols = [(k, s, c) for k, s, c in attr_cols if c.type != pa.null()]
    if not all(c.type in _SCALAR_TYPES for _, _, c in attr_cols):
        return None
    if not _floats_ok(table, attr_cols):
        return None

    if ts_mode == "split":
        ts_int, ts_str = table.column("ts"), table.column(TS_STR_KEY)
    elif ts_mode == "str":
        ts_int, ts_str = pa.nulls(len(rows), pa.int64()), table.column("ts")
    else:
        ts_int, ts_str = table.column("ts"), pa.nulls(len(rows), pa.string())
    columns = {"_row": rows, "ts_int": ts_int, "ts_str": ts_str}
    columns.update((n, table.column(n)) for n in SCALAR_FIELDS)
    raw = pa.table([columns[n] for n in RAW_SCHEMA.names], schema=RAW_SCHEMA)
    return RawBatch(raw, _long_attrs(rows, attr_cols))


_RENAMED_KEY = _RENAMES[0][1][:-2]  # b'"ts\\u0000s"'
_PLAIN_TS_KEY = re.compile(rb'"ts"\s*:')


def _renamed_beside_plain_ts(data: bytes | bytearray) -> bool:
    """Whether a line holds both a renamed string ``ts`` key and a plain one.

    The rename hides a duplicated ``ts`` key from Arrow's duplicate-key check (``{"ts":"…",
    "ts":123}`` or ``…,"ts":null``), where the reference path keeps the last value; such a chunk is
    left to bisection and the reference path. (A line with a string ``ts`` in ``attrs`` beside a
    numeric top-level one lands here too: decoded the slow way, same result.)
    """
    if _RENAMED_KEY not in data or not _PLAIN_TS_KEY.search(data):
        return False
    return any(_RENAMED_KEY in line and _PLAIN_TS_KEY.search(line) for line in bytes(data).split(b"\n"))


def _floats_ok(table: pa.Table, attr_cols: list) -> bool:
    """No NaN/Infinity anywhere, and no attribute float that might be a promoted big integer."""
    for name, typ in SCALAR_FIELDS.items():
        if typ == pa.float64() and not _all_finite(table.column(name)):
            return False
    for _, _, col in attr_cols:
        if col.type == pa.float64():
            if not _all_finite(col):
                return False
            big = pc.and_(pc.greater_equal(pc.abs(col), _EXACT_INT_LIMIT), pc.equal(pc.floor(col), col))
            if pc.any(big).as_py():
                return False
    return True


def _all_finite(col) -> bool:
    if col.null_count == len(col):
        return True
    return pc.all(pc.is_finite(col)).as_py() is not False


def _long_attrs(rows: pa.Array, attr_cols: list) -> pa.Table:
    """The attribute columns of a chunk as one long (row, key, value) table."""
    parts = []
    slot = {pa.string(): "s", pa.int64(): "i", pa.float64(): "f", pa.bool_(): "b"}
    for key, src, col in attr_cols:
        idx = pc.indices_nonzero(pc.is_valid(col))
        n = len(idx)
        if n == 0:
            continue
        cols = {
            "_row": pc.take(rows, idx),
            "key": pa.repeat(pa.scalar(key, pa.string()), n),
            "src": pa.repeat(pa.scalar(src, pa.int8()), n),
        }
        for typ, name in slot.items():
            cols[name] = pc.take(col, idx) if col.type == typ else pa.nulls(n, typ)
        parts.append(pa.table([cols[n] for n in ATTRS_SCHEMA.names], schema=ATTRS_SCHEMA))
    return pa.concat_tables(parts) if parts else ATTRS_SCHEMA.empty_table()
