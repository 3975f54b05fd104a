"""The reference decode path: one ``orjson.loads`` per line, JSON types checked in Python.

It is the definition of what the fast path must do (the differential tests hold them equal) and
it takes every line the fast path cannot: odd bytes, a line that is not an object, wrong types.
orjson is strict: it rejects NaN/Infinity, invalid UTF-8, lone surrogates, trailing data and
nesting deeper than 1024.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson
import pyarrow as pa

from fleetlens.contract.lines import BOM, LineIndex
from fleetlens.contract.raw import (
    ATTRS_SCHEMA,
    INT64_MAX,
    INT64_MIN,
    RAW_SCHEMA,
    SRC_ATTRS,
    SRC_TOP,
    PathRejection,
    RawBatch,
)
from fleetlens.contract.schema import MAX_EVENT_ID_CHARS, WIRE_TYPES

_EXPECTED = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "ts": "an RFC 3339 string or integer epoch milliseconds",
    "attrs": "an object of string -> string/number/bool",
}
# Where the wire type alone undersells the rule, say the whole rule.
_EXPECTED_FIELD = {
    "attempt": "an integer >= 1",
    "line": "an integer >= 0",
    "amount": "a number >= 0",
    "duration_ms": "a number >= 0",
}
_FIELD_ORDER = {name: i for i, name in enumerate(WIRE_TYPES)}


def describe(value: Any) -> str:
    """A short human-readable rendering of a JSON value and its JSON type, for reasons."""
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (boolean)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"{shown!r} (string)"
    if isinstance(value, (int, float)):
        return f"{value!r} (number)"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _is_int64(v: Any) -> bool:
    return type(v) is int and INT64_MIN <= v <= INT64_MAX


def _is_number(v: Any) -> bool:
    return type(v) in (int, float)  # not bool; ints beyond int64 become floats, as in Arrow


def _wire_ok(wire: str, v: Any) -> bool:
    if wire == "string":
        return type(v) is str
    if wire == "integer":
        return _is_int64(v)
    if wire == "number":
        return _is_number(v)
    if wire == "ts":
        return type(v) is str or _is_int64(v)
    return type(v) is dict  # attrs; its values are checked as attributes


class _Columns:
    """Python lists in the raw shape, appended to line by line."""

    def __init__(self) -> None:
        self.rows = {name: [] for name in RAW_SCHEMA.names}
        self.attrs = {name: [] for name in ATTRS_SCHEMA.names}
        self.rejected: list[PathRejection] = []

    def add_attr(self, row: int, key: str, src: int, v: Any) -> None:
        a = self.attrs
        a["_row"].append(row)
        a["key"].append(key)
        a["src"].append(src)
        a["s"].append(v if type(v) is str else None)
        a["i"].append(v if _is_int64(v) else None)
        a["f"].append(float(v) if type(v) is float or (type(v) is int and not _is_int64(v)) else None)
        a["b"].append(v if type(v) is bool else None)

    def add_row(self, row: int, obj: dict) -> None:
        r = self.rows
        r["_row"].append(row)
        for name in RAW_SCHEMA.names[1:]:
            r[name].append(None)
        for key, v in obj.items():
            if v is None:
                continue
            wire = WIRE_TYPES.get(key)
            if wire is None:
                self.add_attr(row, key, SRC_TOP, v)
            elif wire == "ts":
                r["ts_str" if type(v) is str else "ts_int"][-1] = v
            elif wire == "attrs":
                for k, av in v.items():
                    if av is not None:
                        self.add_attr(row, k, SRC_ATTRS, av)
            elif wire == "number":
                r[key][-1] = float(v)
            else:
                r[key][-1] = v

    def batch(self) -> RawBatch:
        return RawBatch(
            pa.table(self.rows, schema=RAW_SCHEMA),
            pa.table(self.attrs, schema=ATTRS_SCHEMA),
            self.rejected,
        )


def _type_error(obj: dict) -> tuple[str, str] | None:
    """(field, reason) of the first field, in contract order, whose JSON type is wrong."""
    errors = []
    for key, v in obj.items():
        if v is None:
            continue
        wire = WIRE_TYPES.get(key)
        if wire is None:
            if not _scalar(v):
                errors.append((len(_FIELD_ORDER), key, f"unknown field {key!r} goes to attrs and must be a string, number or boolean, got {describe(v)}"))
        elif not _wire_ok(wire, v):
            errors.append((_FIELD_ORDER[key], key, f"{key} must be {_EXPECTED_FIELD.get(key, _EXPECTED[wire])}, got {describe(v)}"))
        elif wire == "attrs":
            bad = next((k for k, av in v.items() if av is not None and not _scalar(av)), None)
            if bad is not None:
                errors.append((_FIELD_ORDER[key], key, f"attrs[{bad!r}] must be a string, number or boolean, got {describe(v[bad])}"))
    if not errors:
        return None
    _, field, reason = min(errors, key=lambda e: e[0])
    return field, reason


def _scalar(v: Any) -> bool:
    return type(v) in (str, bool, int, float)


def _known_event_id(obj: dict) -> str:
    eid = obj.get("event_id")
    return eid if type(eid) is str and 0 < len(eid) <= MAX_EVENT_ID_CHARS else ""


def parse_lines(index: LineIndex, lines: Iterable[int]) -> RawBatch:
    """Decode the given lines of ``index`` one by one into a raw batch."""
    cols = _Columns()
    for i in lines:
        raw = index.raw(i)
        if index.line_no[i] == 0 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            cols.rejected.append(PathRejection(i, "", "payload", f"line is not valid JSON: {exc}"))
            continue
        if type(obj) is not dict:
            what = describe(obj)
            cols.rejected.append(PathRejection(i, "", "payload", f"line must be a JSON object, got {what}"))
            continue
        err = _type_error(obj)
        if err is not None:
            cols.rejected.append(PathRejection(i, _known_event_id(obj), *err))
            continue
        cols.add_row(i, obj)
    return cols.batch()
