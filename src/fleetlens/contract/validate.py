"""Semantic validation and normalization of a raw batch, vectorized (Polars / Arrow).

One ordered list of checks (``CHECKS``) decides every row: the first failing check names the
field and the reason. Both decode paths feed this module, so the contract's rules live here once.
Valid rows are normalized (``ts`` to UTC milliseconds, ``level`` lowercased with aliases,
``currency`` uppercased, long messages truncated, attributes stringified) and split into the
``EVENTS_SCHEMA`` and ``METRICS_SCHEMA`` tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from fleetlens.contract.raw import RAW_SCHEMA, SCALAR_FIELDS, RawBatch
from fleetlens.contract.schema import (
    ATTRS_TYPE,
    EVENTS_SCHEMA,
    KINDS,
    LEVEL_ALIASES,
    LEVELS,
    MAX_ATTR_KEY_CHARS,
    MAX_EVENT_ID_CHARS,
    MAX_MESSAGE_BYTES,
    METRICS_SCHEMA,
    OPERATIONS,
    OUTCOMES,
)

# The store's DateTime64(3) range; an event time outside it is a producer bug.
TS_MIN_MS = -2_208_988_800_000  # 1900-01-01T00:00:00Z
TS_MAX_MS = 10_413_792_000_000  # 2300-01-01T00:00:00Z (exclusive)
ORDER_OPS = ("reserve", "buy", "refund", "cancel_reservation")
AMOUNT_OPS = ("buy", "refund", "payment_attempt")
OUTCOME_OPS = ("payment_attempt", "buy", "refund")
SRC_DECODER = 0  # attributes the decoder adds (truncated); they win over the producer's
SRC_FOREIGN = 3  # contract fields the event's table has no column for

c = pl.col
_SHOWN = 40  # characters of an offending value quoted in a reason


def _blank(name: str) -> pl.Expr:
    """Absent: null, or for strings also "" (the output cannot tell "" from absent)."""
    if SCALAR_FIELDS.get(name) != pa.string():
        return c(name).is_null()
    return c(name).is_null() | (c(name) == "")


def _given(name: str) -> pl.Expr:
    return c(name).is_not_null() & (c(name) != "")


def _quoted(name: str) -> pl.Expr:
    return pl.format("'{}'", c(name).str.slice(0, _SHOWN))


def _one_of(values) -> str:
    return ", ".join(values)


@dataclass(frozen=True)
class Check:
    """One rule: rows where ``fails`` is true are rejected with ``field`` and ``reason``."""

    field: str
    fails: pl.Expr
    reason: pl.Expr


def _required(name: str, when: pl.Expr | None = None, what: str = "") -> Check:
    fails = _blank(name) if when is None else when & _blank(name)
    return Check(name, fails, pl.lit(f"{name} is required{what}"))


_is_log, _is_biz, _is_metric = (c("kind") == k for k in ("log", "business", "metric"))
_op = c("operation")

CHECKS: list[Check] = [
    _required("event_id"),
    Check(
        "event_id",
        c("event_id").str.len_chars() > MAX_EVENT_ID_CHARS,
        pl.format(f"event_id must be at most {MAX_EVENT_ID_CHARS} characters, got {{}}", c("event_id").str.len_chars()),
    ),
    Check("ts", c("ts_int").is_null() & c("ts_str").is_null(), pl.lit("ts is required")),
    Check(
        "ts",
        c("ts_str").is_not_null() & c("ts_ms").is_null(),
        pl.format("ts must be an RFC 3339 time with an offset or integer epoch milliseconds, got {}", _quoted("ts_str")),
    ),
    Check(
        "ts",
        (c("ts_ms") < TS_MIN_MS) | (c("ts_ms") >= TS_MAX_MS),
        pl.format("ts must be in the years 1900..2299, got {} ms", c("ts_ms")),
    ),
    _required("kind"),
    Check("kind", ~c("kind").is_in(KINDS), pl.format(f"kind must be one of {_one_of(KINDS)}, got {{}}", _quoted("kind"))),
    _required("service"),
    _required("level", _is_log, " for kind log"),
    Check(
        "level",
        _given("level") & ~c("level_n").is_in(LEVELS),
        pl.format(f"level must be one of {_one_of(LEVELS)} (or warning), got {{}}", _quoted("level")),
    ),
    _required("event_type", _is_log, " for kind log"),
    _required("message", _is_log, " for kind log"),
    _required("operation", _is_biz, " for kind business"),
    Check(
        "operation",
        _given("operation") & ~_op.is_in(OPERATIONS),
        pl.format(f"operation must be one of {_one_of(OPERATIONS)}, got {{}}", _quoted("operation")),
    ),
    _required("action_id", _is_biz, " for kind business"),
    _required("user_id", _is_biz, " for kind business"),
    _required("page", _is_biz & (_op == "page_view"), " for operation page_view"),
    _required("order_id", _is_biz & _op.is_in(ORDER_OPS), f" for operations {_one_of(ORDER_OPS)}"),
    _required("amount", _is_biz & _op.is_in(AMOUNT_OPS), f" for operations {_one_of(AMOUNT_OPS)}"),
    Check("amount", c("amount") < 0, pl.format("amount must be >= 0, got {}", c("amount"))),
    _required("currency", c("amount").is_not_null(), " with amount"),
    Check(
        "currency",
        _given("currency") & ~c("currency").str.contains(r"^[A-Za-z]{3}$"),
        pl.format("currency must be a 3-letter code, got {}", _quoted("currency")),
    ),
    _required("provider", _is_biz & (_op == "payment_attempt"), " for operation payment_attempt"),
    _required("attempt", _is_biz & (_op == "payment_attempt"), " for operation payment_attempt"),
    Check("attempt", c("attempt") < 1, pl.format("attempt must be an integer >= 1, got {}", c("attempt"))),
    _required("outcome", _is_biz & _op.is_in(OUTCOME_OPS), f" for operations {_one_of(OUTCOME_OPS)}"),
    Check(
        "outcome",
        _given("outcome") & ~c("outcome").is_in(OUTCOMES),
        pl.format(f"outcome must be one of {_one_of(OUTCOMES)}, got {{}}", _quoted("outcome")),
    ),
    Check("duration_ms", c("duration_ms") < 0, pl.format("duration_ms must be >= 0, got {}", c("duration_ms"))),
    Check("line", c("line") < 0, pl.format("line must be >= 0, got {}", c("line"))),
    _required("name", _is_metric, " for kind metric"),
    _required("value", _is_metric, " for kind metric"),
    Check(
        "attrs",
        c("bad_key").is_not_null(),
        pl.format(f"attrs keys must be at most {MAX_ATTR_KEY_CHARS} characters, got {{}} ({{}} characters)",
                  pl.format("'{}…'", c("bad_key").str.slice(0, _SHOWN)), c("bad_key").str.len_chars()),
    ),
]

_TS_STR_PARSED = c("ts_str").str.to_datetime("%+", time_zone="UTC", time_unit="ms", strict=False).dt.epoch("ms")
_DERIVED = {
    "ts_ms": pl.coalesce(_TS_STR_PARSED, c("ts_int")),
    "level_n": c("level").str.to_lowercase().replace(LEVEL_ALIASES),
}
# Whether any check fails on a row: one cheap pass; the first failing check is found only for
# the (usually no) rows where one does.
_ANY_FAIL = pl.any_horizontal([chk.fails for chk in CHECKS]).fill_null(False)
# Index of the first failing check per row (null: valid). Built once: building it is not free.
_FIRST_FAIL = pl.coalesce([pl.when(chk.fails).then(pl.lit(i, pl.Int32)) for i, chk in enumerate(CHECKS)])
_REJECTION = {
    "eid": pl.when(c("event_id").str.len_chars() <= MAX_EVENT_ID_CHARS).then(c("event_id")).otherwise(pl.lit("")).fill_null(""),
    "field": c("_fail").replace_strict(list(range(len(CHECKS))), [chk.field for chk in CHECKS], return_dtype=pl.String),
    "reason": pl.coalesce([pl.when(c("_fail") == i).then(chk.reason.cast(pl.String)) for i, chk in enumerate(CHECKS)]),
}


def _columns_used(exprs) -> set[str]:
    return {name for e in exprs for name in e.meta.root_names()}


# The raw columns the checks and the output need in Polars; the others go to the output from
# Arrow directly, never converted.
_CHECKED_COLUMNS = [
    n for n in RAW_SCHEMA.names
    if n in {"_row", "kind"} | _columns_used([*(k.fails for k in CHECKS), *(k.reason for k in CHECKS), *_DERIVED.values()])
]


def _bad_keys(attrs: pl.DataFrame) -> pl.DataFrame:
    """Per row, the first attribute key longer than MAX_ATTR_KEY_CHARS (rows with one only)."""
    return (
        attrs.lazy()
        .filter(c("key").str.len_chars() > MAX_ATTR_KEY_CHARS)
        .group_by("_row")
        .agg(bad_key=c("key").min())
        .collect()
    )


@dataclass
class Validated:
    """Valid rows split by table, and (row, event_id, field, reason) of the rejected ones."""

    events: pa.Table
    metrics: pa.Table
    rejected: list[tuple[int, str, str, str]]


def validate(raw: RawBatch) -> Validated:
    """Run ``CHECKS`` over ``raw`` (rows sorted by ``_row``) and build the output tables."""
    attrs = pl.from_arrow(raw.attrs)
    df = pl.from_arrow(raw.rows.select(_CHECKED_COLUMNS)).with_columns(**_DERIVED)
    bad_keys = _bad_keys(attrs)
    if bad_keys.height:
        df = df.join(bad_keys, on="_row", how="left", maintain_order="left")
    else:
        df = df.with_columns(bad_key=pl.lit(None, pl.String))
    failing = df.select(_ANY_FAIL).to_series()
    rows = raw.rows
    rejected = []
    if failing.any():
        bad = df.filter(failing).with_columns(_fail=_FIRST_FAIL)
        rejected = list(bad.select("_row", **_REJECTION).iter_rows())
        keep = ~failing
        df = df.filter(keep)
        rows = rows.filter(keep.to_arrow())
        attrs = attrs.join(df.select("_row"), on="_row", how="semi")
    return _Output(rows, df, attrs).validated(rejected)


def format_number(f: pl.Expr) -> pl.Expr:
    """How a number becomes an attribute string: integral values up to 2**53 without a fraction."""
    integral = (f == f.floor()) & (f.abs() < 2.0**53)
    return pl.when(integral).then(f.cast(pl.Int64).cast(pl.String)).otherwise(f.cast(pl.String))


_ATTR_VALUE = pl.coalesce(
    c("s"),
    c("i").cast(pl.String),
    format_number(c("f")),
    pl.when(c("b")).then(pl.lit("true")).when(c("b").not_()).then(pl.lit("false")),
)
_NOT_ATTRS = {"_row", "kind", "ts_int", "ts_str"}


class _Output:
    """Builds the output tables from the valid rows (``rows``, and ``df`` with derived columns)."""

    def __init__(self, rows: pa.Table, df: pl.DataFrame, attrs: pl.DataFrame) -> None:
        self.rows = rows
        self.row_ids = df["_row"].to_numpy()
        self.is_metric = (df["kind"] == "metric").to_numpy()
        message, truncated = _truncate_messages(rows.column("message"))
        self.columns = {
            "ts": pa.array(df["ts_ms"].to_numpy(), pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "level": df["level_n"].to_arrow().cast(pa.string()),
            "currency": pc.utf8_upper(rows.column("currency")),
            "message": message,
        }
        self.entries = self._entries(attrs, truncated)

    def validated(self, rejected: list) -> Validated:
        return Validated(self._table(EVENTS_SCHEMA, ~self.is_metric), self._table(METRICS_SCHEMA, self.is_metric), rejected)

    def _entries(self, attrs: pl.DataFrame, truncated: list[tuple[int, int]]) -> pl.DataFrame:
        """All attribute entries of the valid rows, one per (row, key), sorted by row and key.

        Sources, by precedence: decoder flags (truncated), the attrs object, unknown top-level
        fields, and contract fields the row's table has no column for (e.g. a metric's message).
        """
        parts = [attrs.select("_row", "key", "src", value=_ATTR_VALUE)]
        if truncated:
            parts.append(pl.DataFrame(
                {"_row": [int(self.row_ids[i]) for i, _ in truncated], "key": "truncated",
                 "src": SRC_DECODER, "value": [str(n) for _, n in truncated]},
                schema=parts[0].schema,
            ))
        for schema, mask in ((EVENTS_SCHEMA, ~self.is_metric), (METRICS_SCHEMA, self.is_metric)):
            if not mask.any():
                continue
            foreign = [n for n in self.rows.column_names if n not in schema.names and n not in _NOT_ATTRS]
            sub = self.rows.select(["_row", *foreign])
            if not mask.all():
                sub = sub.filter(pa.array(mask))
            present = [n for n in foreign if sub.column(n).null_count < sub.num_rows]
            if present:
                parts.append(_foreign_entries(pl.from_arrow(sub.select(["_row", *present]))))
        entries = pl.concat(parts, how="vertical_relaxed")
        return entries.sort("_row", "key", "src").unique(["_row", "key"], keep="first", maintain_order=True)

    def _table(self, schema: pa.Schema, mask_np: np.ndarray) -> pa.Table:
        if mask_np.all():
            mask = None
        else:
            mask = pa.array(mask_np, pa.bool_())
        arrays = []
        for f in schema:
            if f.name == "attrs":
                arrays.append(self._attrs_map(mask_np))
                continue
            col = self.columns.get(f.name)
            if col is None:
                col = self.rows.column(f.name)
            if mask is not None:
                col = col.filter(mask)
            if col.type != f.type:
                col = col.cast(f.type)
            if pa.types.is_string(f.type) and col.null_count:
                col = pc.fill_null(col, "")
            arrays.append(col)
        return pa.Table.from_arrays(arrays, schema=schema)

    def _attrs_map(self, mask_np: np.ndarray) -> pa.Array:
        rows = self.row_ids[mask_np]
        entry_rows = self.entries["_row"].to_numpy()
        in_table = mask_np[np.searchsorted(self.row_ids, entry_rows)] if len(entry_rows) else np.zeros(0, bool)
        mine = self.entries.filter(pl.Series(in_table))
        offsets = np.searchsorted(mine["_row"].to_numpy(), rows).astype(np.int32)
        offsets = np.append(offsets, np.int32(mine.height))
        keys = mine["key"].to_arrow().cast(pa.string())
        values = mine["value"].to_arrow().cast(pa.string())
        return pa.MapArray.from_arrays(pa.array(offsets), keys, values, type=ATTRS_TYPE)


def _foreign_entries(df: pl.DataFrame) -> pl.DataFrame:
    """Attribute entries (long form) for every non-null value of ``df``'s columns but ``_row``."""
    as_text = [
        (format_number(c(n)) if dt.is_float() else c(n).cast(pl.String)).alias(n)
        for n, dt in df.schema.items()
        if n != "_row"
    ]
    return (
        df.lazy()
        .select("_row", *as_text)
        .unpivot(index="_row", variable_name="_key", value_name="_value")  # "key"/"value" are fields
        .filter(c("_value").is_not_null())
        .select("_row", key="_key", src=pl.lit(SRC_FOREIGN, pl.Int8), value="_value")
        .collect()
    )


def _truncate_messages(col: pa.ChunkedArray) -> tuple[pa.Array, list[tuple[int, int]]]:
    """Messages cut to MAX_MESSAGE_BYTES on a character boundary, and (position, original length)
    of each one that was cut."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    too_long = pc.greater(pc.binary_length(arr), MAX_MESSAGE_BYTES)
    idx = pc.indices_nonzero(pc.fill_null(too_long, False)).to_pylist()
    if not idx:
        return arr, []
    values = arr.to_pylist()
    cut = []
    for i in idx:
        data = values[i].encode()
        values[i] = data[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore")
        cut.append((i, len(data)))
    return pa.array(values, pa.string()), cut
