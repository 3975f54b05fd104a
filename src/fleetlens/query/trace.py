"""Trace: every event of one ``action_id`` across services, in time order, with per-service spans.

The events table is sorted by (kind, service, ts), not by action_id, so the lookup first reads
``action_index`` (min/max ts per action_id, kept by a materialized view) and then scans events
only inside that time window, where the bloom filter on action_id skips most granules.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from fleetlens.query.common import (
    LOOKUP,
    Limits,
    QueryError,
    QueryResult,
    TimeRange,
    Timer,
    from_ms,
    parse_time,
    run,
    sources_meta,
    table_source,
    to_ms,
)
from fleetlens.store.client import Store

EVENT_COLUMNS = (
    "event_id, ts, kind, service, host, pod, container, node, level, event_type, message, action_id, logger, "
    "source_file, line, duration_ms, user_id, session_id, operation, page, order_id, amount, currency, provider, "
    "attempt, outcome, error_code"
)

WINDOW_SQL = "SELECT min(ts_min) AS lo, max(ts_max) AS hi, count() AS n FROM action_index WHERE action_id = {action_id:String}"

EVENTS_SQL = f"""
SELECT {EVENT_COLUMNS}
FROM <source>
WHERE ts >= {{lo:DateTime64(3, 'UTC')}} AND ts <= {{hi:DateTime64(3, 'UTC')}} AND action_id = {{action_id:String}}
ORDER BY ts, event_id
LIMIT {{limit:UInt32}}
"""

# One span per service: its first and last event of the action (a waterfall row).
SPANS_SQL = """
SELECT service,
       min(ts) AS first_ts,
       max(ts) AS last_ts,
       count() AS events,
       toFloat64(dateDiff('millisecond', min(ts), max(ts))) AS duration_ms,
       countIf(level = 'error') AS errors
FROM <source>
WHERE ts >= {lo:DateTime64(3, 'UTC')} AND ts <= {hi:DateTime64(3, 'UTC')} AND action_id = {action_id:String}
GROUP BY service
ORDER BY first_ts, service
LIMIT {limit:UInt32}
"""


def trace(store: Store, action_id: str, *, start: Any = None, end: Any = None, limit: int | None = None,
          limits: Limits = Limits()) -> QueryResult:
    """Events of ``action_id`` in time order (``events``) and one span per service (``spans``).

    The time range defaults to the action's own (from ``action_index``); ``start``/``end`` narrow
    it further. ``meta.found`` is False when the store holds no event of the action.
    """
    timer = Timer()
    if not action_id or len(action_id) > 256:
        raise QueryError("action_id", "must be 1..256 characters")
    n = limits.limit(limit)
    window = run(store, WINDOW_SQL, {"action_id": action_id}, limits, lane=LOOKUP).to_pylist()[0]
    lo, hi = window["lo"], window["hi"]
    s, e = parse_time("start", start), parse_time("end", end)
    lo, hi = max(lo, s) if s else lo, min(hi, e) if e else hi
    if not window["n"] or lo > hi:
        lo = hi = from_ms(0)  # an empty partition: the same queries return empty, typed tables
    # ts <= hi: the relation's half-open range ends 1 ms after hi
    src = table_source(store, limits, "events", TimeRange(lo, from_ms(to_ms(hi) + 1)))
    source = src.sql
    params = {"action_id": action_id, "lo": lo, "hi": hi, "limit": n}
    events = run(store, EVENTS_SQL.replace("<source>", source), params, limits, lane=LOOKUP, projections=False)
    # a whole trace is in hand: its spans cost no second scan; a truncated one needs the store's
    spans = (_spans(events) if events.num_rows < n
             else run(store, SPANS_SQL.replace("<source>", source), {**params, "limit": limits.max_rows}, limits,
                 lane=LOOKUP, projections=False))
    found = events.num_rows > 0
    return QueryResult({"events": events, "spans": spans}, TimeRange(lo, hi) if found else None, timer.ms(),
                       {"action_id": action_id, "found": found, "truncated": events.num_rows >= n, **sources_meta(src)})


def _spans(events: pa.Table) -> pa.Table:
    """SPANS_SQL computed over the fetched events (same columns and order)."""
    if events.num_rows == 0:
        return pa.table({"service": pa.array([], pa.string())})
    df = pl.from_arrow(events).group_by("service").agg(
        pl.col("ts").min().alias("first_ts"),
        pl.col("ts").max().alias("last_ts"),
        pl.len().cast(pl.UInt64).alias("events"),
        ((pl.col("ts").max() - pl.col("ts").min()).dt.total_milliseconds().cast(pl.Float64)).alias("duration_ms"),
        (pl.col("level") == "error").sum().cast(pl.UInt64).alias("errors"),
    )
    return df.sort(["first_ts", "service"]).to_arrow()
