"""What every query family shares: time ranges, intervals, limits, cursors, validation, results.

User input reaches SQL only as bound ``{name:Type}`` parameters; the few identifiers that shape a
query (an interval, a group-by dimension) are checked against fixed choices here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import pyarrow as pa

from fleetlens.settings import QuerySettings
from fleetlens.store.client import Store
from fleetlens.store.tables import USERS_1M_ROLLUP, Projection, Rollup

UTC = dt.timezone.utc


class QueryError(ValueError):
    """Bad input to a query; ``param`` names the parameter (the API answers 400 with both)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class Limits:
    """Bounds of every query: timeout, row limit, bucket count, range length; and defaults."""

    timeout_s: float = 10.0
    max_rows: int = 10_000
    default_limit: int = 100
    max_buckets: int = 5_000
    max_range_s: float = 31 * 86400
    default_range_s: int = 3600
    users_window_min: int = 5
    final: bool = False
    archive: Any = None  # a fleetlens.archive.reader.ArchiveView: ranges reaching archived days read them too
    lookup_nice: int = -10  # nice value of lookups' threads (see run)
    scan_nice: int = -10  # nice value of scans' threads

    @classmethod
    def from_settings(cls, s: QuerySettings, archive: Any = None) -> Limits:
        """The limits ``settings.query`` sets; ``archive``: the ArchiveView queries read archived days from."""
        return cls(s.timeout_s, s.max_rows, s.default_limit, s.max_buckets, s.max_range_days * 86400,
                   s.default_range_s, s.users_window_min, s.final, archive, s.lookup_nice, s.scan_nice)

    def limit(self, value: int | None) -> int:
        """A list's row count: ``value`` (1..max_rows) or the default."""
        if value is None:
            return min(self.default_limit, self.max_rows)
        if not 1 <= value <= self.max_rows:
            raise QueryError("limit", f"must be between 1 and {self.max_rows}, got {value}")
        return value


@dataclass(frozen=True)
class TimeRange:
    """A half-open interval [start, end) of event time, UTC, millisecond precision."""

    start: dt.datetime
    end: dt.datetime

    @property
    def start_ms(self) -> int:
        """Start as epoch milliseconds."""
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        """End as epoch milliseconds."""
        return to_ms(self.end)

    def params(self) -> dict[str, dt.datetime]:
        """The ``{start:DateTime64(3)}``/``{end:…}`` bound parameters."""
        return {"start": self.start, "end": self.end}

    def to_json(self) -> dict[str, str]:
        """ISO 8601 start and end."""
        return {"start": iso(self.start), "end": iso(self.end)}


def to_ms(value: dt.datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(round(value.timestamp() * 1000))


def from_ms(ms: int) -> dt.datetime:
    """Aware UTC datetime of epoch milliseconds."""
    return dt.datetime.fromtimestamp(ms / 1000, UTC)


def iso(value: dt.datetime) -> str:
    """``2026-11-22T10:15:00.123Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(param: str, value: str | int | float | dt.datetime | None) -> dt.datetime | None:
    """A time given as RFC 3339 / ISO 8601 (naive means UTC), epoch milliseconds, or a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        value = value.strip()  # str.strip also drops control separators such as \x1c, which int() refuses
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"-?\d{1,15}", value)):
        ms = int(value)
        if not 0 <= ms < 253_402_300_800_000:
            raise QueryError(param, f"epoch milliseconds out of range: {value}")
        return from_ms(ms)
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(param, f"not a time (RFC 3339 like 2026-11-22T10:15:00Z, or epoch ms): {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def time_range(start: Any = None, end: Any = None, limits: Limits = Limits(), now: dt.datetime | None = None) -> TimeRange:
    """The queried range: given ends, else ``default_range_s`` before ``end`` (or after ``start``); end default now."""
    s, e = parse_time("start", start), parse_time("end", end)
    default = dt.timedelta(seconds=limits.default_range_s)
    if e is None:
        e = s + default if s is not None else (now or dt.datetime.now(UTC))
    if s is None:
        s = e - default
    if s >= e:
        raise QueryError("start", f"must be before end ({iso(s)} >= {iso(e)})")
    if (e - s).total_seconds() > limits.max_range_s:
        raise QueryError("start", f"range longer than {limits.max_range_s / 86400:g} days")
    return TimeRange(s, e)


_INTERVAL_RE = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(param: str, value: str, allowed: Iterable[str] | None = None, minimum_s: int = 60) -> int:
    """Seconds of an interval like ``1m``, ``15m``, ``3h``, ``1d`` (one of ``allowed`` when given)."""
    m = _INTERVAL_RE.match(str(value).strip().lower())
    if not m:
        raise QueryError(param, f"not an interval like 1m, 15m, 1h, 1d: {value!r}")
    seconds = int(m[1]) * _UNIT_S[m[2]]
    choices = list(allowed or [])
    if choices and f"{m[1]}{m[2]}" not in choices:
        raise QueryError(param, f"must be one of {', '.join(choices)}, got {value!r}")
    if seconds < minimum_s or seconds > 86400:
        raise QueryError(param, f"must be between {minimum_s}s and 1d, got {value!r}")
    return seconds


def check_buckets(rng: TimeRange, step_s: int, limits: Limits, param: str = "interval") -> None:
    """Refuse a range that would make more than ``max_buckets`` buckets of ``step_s``."""
    n = (rng.end_ms - rng.start_ms) / (step_s * 1000)
    if n > limits.max_buckets:
        raise QueryError(param, f"{n:.0f} buckets over the range; at most {limits.max_buckets} (widen the interval)")


def choice(param: str, value: str, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed`` (an identifier that shapes SQL), else a QueryError."""
    options = tuple(allowed)
    if value not in options:
        raise QueryError(param, f"must be one of {', '.join(options)}, got {value!r}")
    return value


def values(param: str, given: Iterable[str] | str | None, allowed: Iterable[str] | None = None) -> list[str]:
    """A list filter: repeated values and/or comma-separated, blanks dropped, each ≤ 256 chars."""
    if given is None:
        return []
    items = [given] if isinstance(given, str) else list(given)
    out = [v.strip() for item in items for v in str(item).split(",") if v.strip()]
    for v in out:
        if len(v) > 256:
            raise QueryError(param, "a value is longer than 256 characters")
    if allowed is not None:
        options = set(allowed)
        bad = [v for v in out if v not in options]
        if bad:
            raise QueryError(param, f"unknown value(s) {', '.join(map(repr, bad))}; allowed: {', '.join(sorted(options))}")
    return out


def encode_cursor(*key: Any) -> str:
    """An opaque cursor holding the sort key of the last row of a page."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(param: str, cursor: str | None, types: tuple[type, ...]) -> list[Any] | None:
    """The sort key in ``cursor`` (checked against ``types``), or None for the first page."""
    if not cursor:
        return None
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise QueryError(param, "not a cursor returned by this query") from None
    if not isinstance(key, list) or len(key) != len(types) or not all(isinstance(k, t) for k, t in zip(key, types)):
        raise QueryError(param, "not a cursor returned by this query")
    return key


@dataclass
class QueryResult:
    """What a query returns: named Arrow tables, scalar facts, the range, and how long it took."""

    tables: dict[str, pa.Table]
    range: TimeRange | None
    elapsed_ms: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON: each table as a list of row objects (times as ISO 8601 strings)."""
        out: dict[str, Any] = {"elapsed_ms": round(self.elapsed_ms, 3)}
        if self.range is not None:
            out["range"] = self.range.to_json()
        out.update(self.meta)
        for name, table in self.tables.items():
            out[name] = rows(table)
        return out


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows of ``table`` as dicts, timestamps as ISO 8601 strings."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            cols[name] = [iso(v) if v is not None else None for v in col.to_pylist()]
        else:
            cols[name] = col.to_pylist()
    return [dict(zip(cols, vals)) for vals in zip(*cols.values())] if cols else []


class Timer:
    """Wall time of a query, from construction to :meth:`ms`."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def ms(self) -> float:
        """Milliseconds since construction."""
        return (time.perf_counter() - self._t0) * 1000


LOOKUP, SCAN = "lookup", "scan"


def run(store: Store, sql: str, params: Mapping[str, Any], limits: Limits, *, lane: str = SCAN,
        projections: bool = True) -> pa.Table:
    """``sql`` with bound ``params``, bounded by the query timeout and the row limit, in its ``lane``.

    ``LOOKUP``: a query reading little (a trace, a page of events, alerts) that someone waits for;
    ``SCAN``: one reading a whole range (aggregates, counts, free-text search). While a lookup runs,
    ClickHouse pauses scans (query ``priority`` 1 before 2). Lookups' threads run at nice
    ``limits.lookup_nice`` (below 0: ahead of ingest and merges on busy cores), scans' at
    ``limits.scan_nice`` (−10: also ahead of ingest); settings.query sets both.
    """
    # max_result_rows guards any query whose own LIMIT is missing or larger; 'break' returns what
    # fits instead of failing, and the query's LIMIT keeps results exact below it.
    settings = [f"max_result_rows = {int(limits.max_rows) + 1}", "result_overflow_mode = 'break'"]
    if lane not in (LOOKUP, SCAN):
        raise ValueError(f"unknown lane {lane!r}")
    nice = limits.lookup_nice if lane == LOOKUP else limits.scan_nice
    settings.append(f"priority = {1 if lane == LOOKUP else 2}")
    if not projections:
        # a query no aggregate projection answers (rows, or counts under a free-text filter): ClickHouse would
        # still weigh each projection of each part (a search's level counts: 30-50 % less CPU without)
        settings.append("optimize_use_projections = 0")
    if nice:
        settings.append(f"os_thread_priority = {int(nice)}")
    return store.query_arrow(f"{sql}\nSETTINGS {', '.join(settings)}", params, timeout_s=limits.timeout_s)


T = TypeVar("T")

# Threads for the second and later queries of one answer (``together``); the first runs in the caller's.
_TOGETHER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fleetlens-query")


def together(*calls: Callable[[], T]) -> list[T]:
    """The results of independent store queries of one answer, run at the same time.

    The store releases the GIL while it works and a small query spends much of its time in one thread
    (parsing, choosing parts), so two queries side by side take about the longer one's time instead of the
    sum (business metrics on the 2-core machine, idle: p50 66–83 → 52–57 ms, the same CPU). The first call
    runs in the calling thread; an error of any call is raised once all have finished.
    """
    futures = [_TOGETHER.submit(call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        wait(futures)  # none left running behind the answer, even when the first failed
    return [first, *(f.result() for f in futures)]


def events_source(store: Store, limits: Limits) -> str:
    """The events table as a query reads it (``FINAL`` when settings.query.final)."""
    return "events FINAL" if limits.final else "events"


@dataclass
class Source:
    """The relation a query reads one table family from over its range, and where the rows come from."""

    table: str
    sql: str
    archive_days: list[dt.date] = field(default_factory=list)
    hot_days: list[dt.date] = field(default_factory=list)


def table_source(store: Store, limits: Limits, table: str, rng: TimeRange) -> Source:
    """``table`` (events, metrics or rejections) over ``rng``: the hot table, or hot ∪ the archived days of the
    range when ``limits.archive`` has any (only those days' files are read). Events read ``FINAL`` when
    settings.query.final."""
    from fleetlens.archive.reader import days_between

    final = limits.final and table == "events"
    if limits.archive is None:
        return Source(table, f"{table} FINAL" if final else table, [], days_between(rng.start_ms, rng.end_ms))
    rel = limits.archive.relation(store, table, rng.start_ms, rng.end_ms, final)
    return Source(table, rel.sql, rel.archive_days, rel.hot_days)


def rollup_source(store: Store, limits: Limits, rollup: Rollup, start_ms: int, end_ms: int) -> Source:
    """The rows of a rollup of events (``store/tables.py`` ``Rollup``) derived from events with ``start <= ts < end``:
    the rollup table (the query filters it to its range), or (when the range reaches archived days) the same
    rollup computed from events ∪ archive over that range. Reported as read from ``events``."""
    from fleetlens.archive.reader import days_between

    if limits.archive is None:
        return Source("events", rollup.name, [], days_between(start_ms, end_ms))
    rel = limits.archive.rollup_relation(store, rollup, start_ms, end_ms, limits.final)
    return Source("events", rel.sql, rel.archive_days, rel.hot_days)


def users_source(store: Store, limits: Limits, lo: dt.datetime, end: dt.datetime) -> Source:
    """The ``users_1m`` rollup rows with ``lo < minute < end`` (minute: event time rounded up, so the events of
    ``(lo − 1 min, end)``)."""
    return rollup_source(store, limits, USERS_1M_ROLLUP, to_ms(lo) - 60_000, to_ms(end))


def sources_meta(*sources: Source) -> dict[str, Any]:
    """``{"sources": {table: {"hot": [days], "archive": [days]}}}``: which days each table was read from where."""
    out: dict[str, dict[str, set[dt.date]]] = {}
    for src in sources:
        entry = out.setdefault(src.table, {"hot": set(), "archive": set()})
        entry["hot"].update(src.hot_days)
        entry["archive"].update(src.archive_days)
    return {"sources": {t: {k: [d.isoformat() for d in sorted(v)] for k, v in e.items()} for t, e in out.items()}}


# Time bucketed through whole minutes (or quarter hours): the same epoch-aligned buckets as
# ``query/business.py``'s BUCKET for steps that are multiples of the unit, and an expression ClickHouse can
# evaluate on a projection keyed by the unit (per-minute / per-quarter-hour aggregates kept in the events
# table's parts, store/tables.py).
MINUTE = "toStartOfMinute(ts)"
QUARTER = "toStartOfFifteenMinutes(ts)"
UNIT_S = {MINUTE: 60, QUARTER: 900}


def bucket_of(unit: str) -> str:
    """The epoch-aligned ``{step}`` bucket of a row, computed from ``unit`` (MINUTE or QUARTER) only."""
    return f"fromUnixTimestamp64Milli(toInt64(intDiv(toUnixTimestamp({unit}) * 1000, {{step:Int64}}) * {{step:Int64}}), 'UTC')"


MINUTE_BUCKET = bucket_of(MINUTE)


# The whole range [start, end) as one filter on the rows' time.
RANGE_FILTER = "ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}"


def split_range(rng: TimeRange, step_s: int, unit: str = MINUTE) -> tuple[list[str], dict[str, Any]]:
    """[start, end) as disjoint time filters and their parameters: the whole buckets of ``step_s`` inside the
    range as a filter on ``unit`` (``toStartOfMinute(ts)``, or ``toStartOfFifteenMinutes(ts)``: a projection
    keyed by it can answer it), and the partial buckets at either end as filters on ``ts`` (read from the
    rows). Each bucket falls in exactly one filter, so per-bucket results of the parts are final rows, and a
    sum over the parts is the range's sum. A step that is not a multiple of the unit, or a range without a
    whole bucket, gives the one plain filter."""
    step = step_s * 1000
    lo, hi = -(-rng.start_ms // step) * step, rng.end_ms // step * step
    if step_s % UNIT_S[unit] or lo >= hi:
        return [RANGE_FILTER], {}
    parts = [f"{unit} >= {{whole_lo:DateTime64(3, 'UTC')}} AND {unit} < {{whole_hi:DateTime64(3, 'UTC')}}"]
    if rng.start_ms < lo:
        parts.append("ts >= {start:DateTime64(3, 'UTC')} AND ts < {whole_lo:DateTime64(3, 'UTC')}")
    if hi < rng.end_ms:
        parts.append("ts >= {whole_hi:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}")
    return parts, {"whole_lo": from_ms(lo), "whole_hi": from_ms(hi)}


# Active parts of a table without a projection's data (added but not yet materialized): reading the projection
# itself would leave their rows out.
_PARTS_WITHOUT_PROJECTION_SQL = """
SELECT count() FROM system.parts
WHERE database = {database:String} AND table = {table:String} AND active AND rows > 0
  AND name NOT IN (SELECT parent_name FROM system.projection_parts
                   WHERE database = {database:String} AND table = {table:String} AND name = {projection:String} AND active)
"""


def projection_states(store: Store, src: Source, projection: Projection) -> str | None:
    """The relation reading an aggregate ``projection`` of ``src``'s table as stored: one row of aggregate *states*
    per part and group, its columns named as the projection writes its keys and aggregates (```count()```), for a
    query that merges them (``countMerge``) with states of rows (``countState``). ClickHouse picks a projection
    only for a query of the very aggregates it holds, which cannot combine a bucket's whole minutes with the
    seconds at its edge; merging the states can (a t-digest too).

    None, and the query reads the way ClickHouse picks, when that would not see every row: the range reaches
    archived days, the read is ``FINAL``, a part lacks the projection (being materialized), the server has no
    ``mergeTreeProjection`` (older than the embedded chDB's ClickHouse), or the store is a cluster (the table
    function reads one server's parts)."""
    if store.render_context.cluster or src.archive_days or src.sql != src.table:
        return None
    if not store.has_table_function("mergeTreeProjection") or store.query_scalar(
            _PARTS_WITHOUT_PROJECTION_SQL, {"database": store.database, "table": src.table, "projection": projection.name}):
        return None
    return f"mergeTreeProjection(`{store.database}`, `{src.table}`, `{projection.name}`)"


def split_minutes(rng: TimeRange) -> tuple[list[str], str | None, dict[str, Any]]:
    """[start, end) as the filter on ``toStartOfMinute(ts)`` of its whole minutes and the filters on ``ts`` of the
    seconds before and after them, with their parameters (``whole_lo``, ``whole_hi``); a range without a whole
    minute: ``([RANGE_FILTER], None, {})``."""
    lo, hi = -(-rng.start_ms // 60_000) * 60_000, rng.end_ms // 60_000 * 60_000
    if lo >= hi:
        return [RANGE_FILTER], None, {}
    edges = []
    if rng.start_ms < lo:
        edges.append("ts >= {start:DateTime64(3, 'UTC')} AND ts < {whole_lo:DateTime64(3, 'UTC')}")
    if hi < rng.end_ms:
        edges.append("ts >= {whole_hi:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}")
    whole = "`toStartOfMinute(ts)` >= {whole_lo:DateTime64(3, 'UTC')} AND `toStartOfMinute(ts)` < {whole_hi:DateTime64(3, 'UTC')}"
    return edges, whole, {"whole_lo": from_ms(lo), "whole_hi": from_ms(hi)}


def union_over(branch: str, parts: list[str]) -> str:
    """``(branch₁ UNION ALL branch₂ …)``: ``branch`` (a SELECT with a ``<time>`` placeholder) once per time filter."""
    return "(" + "\nUNION ALL\n".join(branch.replace("<time>", part) for part in parts) + ")"


def union_of_states(rows: str, stored: str, states: str, edges: list[str], whole: str) -> str:
    """``(rows at edge₁ UNION ALL … UNION ALL stored)``: ``rows`` (a SELECT of aggregate states with a ``<time>``
    placeholder) once per edge filter of :func:`split_minutes`, then ``stored`` (the same columns read from the
    projection's ``<states>``, :func:`projection_states`) over the whole minutes. The rows come first: a table
    function reading a projection of events makes ClickHouse (26.9) resolve a later ``events`` of the same query
    to the projection ("Unknown identifier ts")."""
    branches = [rows.replace("<time>", edge) for edge in edges]
    branches.append(stored.replace("<states>", states).replace("<time>", whole))
    return "(" + "\nUNION ALL\n".join(branches) + ")"


def fill_buckets(table: pa.Table, column: str, rng: TimeRange, step_s: int, zero: Iterable[str],
                 first: int | None = None) -> pa.Table:
    """``table`` with a row for every bucket of ``step_s`` in ``rng`` (missing ones with zeros).

    The grid starts at ``first`` (epoch ms), by default at the bucket holding the range's start.
    """
    import polars as pl

    step = step_s * 1000
    first = rng.start_ms // step * step if first is None else first
    grid = pl.DataFrame({column: pl.int_range(first, rng.end_ms, step, eager=True)}).with_columns(
        pl.col(column).cast(pl.Datetime("ms", "UTC"))
    )
    df = pl.from_arrow(table) if table.num_rows else None
    if df is None or df.is_empty():
        out = grid.with_columns([pl.lit(0).alias(z) for z in zero])
    else:
        df = df.with_columns(pl.col(column).cast(pl.Datetime("ms", "UTC")))
        out = grid.join(df, on=column, how="left").with_columns([pl.col(z).fill_null(0) for z in zero])
    return out.to_arrow()
