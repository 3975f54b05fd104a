"""Ingest overview from the store: events and metric samples per interval, errors and error rate.

Counted by event time (``ts``): with a live feed that is the ingest rate; for a backfill it is the
rate at which the fleet produced what is stored. The dashboard's overview and Grafana use it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fleetlens.query.business import BUCKET
from fleetlens.query.common import (
    MINUTE_BUCKET,
    Limits,
    QueryResult,
    Timer,
    TimeRange,
    check_buckets,
    fill_buckets,
    parse_interval,
    run,
    sources_meta,
    split_range,
    table_source,
    time_range,
    together,
    union_over,
)
from fleetlens.store.client import Store

INTERVALS = ("1m", "5m", "15m", "1h", "3h", "1d")

# Per bucket, kind and level once per part of the range (common.split_range by minutes: every whole minute
# comes from the events_1m projection, only the seconds at either end from rows), then summed per bucket.
EVENTS_BRANCH = f"""
SELECT {MINUTE_BUCKET} AS bucket, kind, level, count() AS n
FROM {{source}}
WHERE <time>
GROUP BY bucket, kind, level"""

EVENTS_SQL = """
SELECT bucket,
       sum(n) AS events,
       sumIf(n, kind = 'log') AS logs,
       sumIf(n, kind = 'log' AND level = 'error') AS errors,
       sumIf(n, kind = 'business') AS business
FROM {branches}
GROUP BY bucket
ORDER BY bucket
"""

METRICS_SQL = f"""
SELECT {BUCKET.format(ts='ts')} AS bucket, count() AS metrics
FROM {{source}}
WHERE ts >= {{start:DateTime64(3, 'UTC')}} AND ts < {{end:DateTime64(3, 'UTC')}}
GROUP BY bucket
ORDER BY bucket
"""

# Rows stored with event time in the trailing window: the ingest rate when no live worker is at hand.
RECENT_SQL = """
SELECT (SELECT count() FROM events WHERE ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')})
     + (SELECT count() FROM metrics WHERE ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}) AS n
"""

COLUMNS = ("events", "logs", "errors", "business", "metrics")


def ingest_overview(store: Store, *, start: Any = None, end: Any = None, interval: str = "1m",
                    limits: Limits = Limits()) -> QueryResult:
    """``buckets``: per bucket of the range, events (logs + business), logs, errors, business, metric samples,
    ``error_rate`` (errors / logs, 0 without logs); ``meta.totals``: the same over the range."""
    import polars as pl

    timer = Timer()
    rng = time_range(start, end, limits)
    step_s = parse_interval("interval", interval, INTERVALS)
    check_buckets(rng, step_s, limits)
    params = {**rng.params(), "step": step_s * 1000}
    ev_src, m_src = table_source(store, limits, "events", rng), table_source(store, limits, "metrics", rng)
    parts, part_params = split_range(rng, 60)
    events_sql = EVENTS_SQL.replace("{branches}", union_over(EVENTS_BRANCH.replace("{source}", ev_src.sql), parts))
    events, metrics = together(
        lambda: run(store, events_sql, params | part_params, limits),
        lambda: run(store, METRICS_SQL.replace("{source}", m_src.sql), params, limits),
    )
    filled = pl.from_arrow(fill_buckets(events, "bucket", rng, step_s, COLUMNS[:4]))
    filled = filled.join(pl.from_arrow(fill_buckets(metrics, "bucket", rng, step_s, ("metrics",))), on="bucket")
    filled = filled.with_columns(
        [pl.col(c).cast(pl.Int64) for c in COLUMNS]
    ).with_columns(
        pl.when(pl.col("logs") > 0).then(pl.col("errors") / pl.col("logs")).otherwise(0.0).alias("error_rate")
    )
    totals = {c: int(filled[c].sum()) for c in COLUMNS}
    totals["error_rate"] = totals["errors"] / totals["logs"] if totals["logs"] else 0.0
    return QueryResult({"buckets": filled.to_arrow()}, rng, timer.ms(),
                       {"interval_s": step_s, "totals": totals, **sources_meta(ev_src, m_src)})


def recent_rate(store: Store, window_s: int = 60, now: dt.datetime | None = None, limits: Limits = Limits()) -> float:
    """Events and samples per second stored with event time in the last ``window_s`` seconds (hot store only)."""
    end = now or dt.datetime.now(dt.timezone.utc)
    params = TimeRange(end - dt.timedelta(seconds=window_s), end).params()
    n = run(store, RECENT_SQL, params, limits).to_pylist()[0]["n"]
    return int(n) / window_s
