"""Performance: operation execution time per interval, and CPU/RAM beside active users.

Execution time is ``duration_ms`` by ``operation`` (business events) or ``event_type`` (logs), per
service. Quantiles use ClickHouse's t-digest (``quantilesTDigest``): bounded memory at any row
count; its error is a rank error (tested: within 1 percentage point of rank on the simulator's
distributions, see docs/queries.md). min, max, avg and counts are exact.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from fleetlens.query.business import BUCKET
from fleetlens.query.common import (
    MINUTE,
    MINUTE_BUCKET,
    QUARTER,
    UNIT_S,
    Limits,
    QueryResult,
    Timer,
    bucket_of,
    check_buckets,
    choice,
    fill_buckets,
    parse_interval,
    projection_states,
    run,
    sources_meta,
    split_minutes,
    split_range,
    table_source,
    time_range,
    together,
    union_of_states,
    union_over,
    values,
)
from fleetlens.store.client import Store
from fleetlens.store.tables import DURATION_QUANTILES, EVENTS_MINUTE_PROJECTION

INTERVALS = ("1m", "5m", "15m", "1h", "3h", "1d")
QUANTILES = DURATION_QUANTILES
# by -> (kind, column): the only identifiers this family puts into SQL
DIMENSIONS = {"operation": ("business", "operation"), "event_type": ("log", "event_type")}

# Once per part of the range (common.split_range): whole buckets come from the events_1m projection,
# which holds these very aggregates per minute (its quantiles: per-minute t-digests merged). Events
# without a duration only count in none of them: count(duration_ms) skips NULL like the others do.
DURATIONS_BRANCH = f"""
SELECT {MINUTE_BUCKET} AS bucket,
       service,
       <column> AS name,
       count(duration_ms) AS count,
       min(duration_ms) AS min_ms,
       max(duration_ms) AS max_ms,
       avg(duration_ms) AS avg_ms,
       quantilesTDigest({', '.join(map(str, QUANTILES))})(duration_ms) AS q
FROM <source>
WHERE kind = {{kind:String}} AND <column> != '' AND <time>
  <filters>
GROUP BY bucket, service, name"""

DURATIONS_SQL = """
SELECT * FROM <branches>
WHERE count > 0
ORDER BY bucket, service, name
LIMIT {limit:UInt32}
"""

# The same answer merged from aggregate states (common.projection_states): the whole minutes of the range as the
# events_1m projection stores them, the seconds at either end aggregated from rows into the same states, merged
# per bucket. A bucket cut by the range's start or end reads a minute of rows at most, where DURATIONS_BRANCH
# reads the rows of its whole partial bucket (up to a day's at interval=1d).
# (statistic, aggregate function, its parameters): the projection's column of each is "<function><parameters>(duration_ms)"
_STATS = (("count", "count", ""), ("min_ms", "min", ""), ("max_ms", "max", ""), ("avg_ms", "avg", ""),
          ("q", "quantilesTDigest", f"({', '.join(map(str, QUANTILES))})"))
_GROUP = "service, <column> AS name"

DURATIONS_ROWS_STATES = f"""
SELECT {MINUTE_BUCKET} AS bucket, {_GROUP},
       {', '.join(f"{fn}State{par}(duration_ms) AS s_{stat}" for stat, fn, par in _STATS)}
FROM <source>
WHERE kind = {{kind:String}} AND <column> != '' AND <time>
  <filters>
GROUP BY bucket, service, name"""

DURATIONS_PROJECTION_STATES = f"""
SELECT {bucket_of('`toStartOfMinute(ts)`')} AS bucket, {_GROUP},
       {', '.join(f"`{fn}{par}(duration_ms)` AS s_{stat}" for stat, fn, par in _STATS)}
FROM <states>
WHERE kind = {{kind:String}} AND <column> != '' AND <time>
  <filters>"""

DURATIONS_STATES_SQL = f"""
SELECT bucket, service, name,
       {', '.join(f"{fn}Merge{par}(s_{stat}) AS {stat}" for stat, fn, par in _STATS)}
FROM <branches>
GROUP BY bucket, service, name
HAVING count > 0
ORDER BY bucket, service, name
LIMIT {{limit:UInt32}}
"""

RESOURCES_SQL = f"""
SELECT {BUCKET.format(ts='ts')} AS bucket,
       <group> AS <group>,
       avgIf(value, name = 'cpu_percent') AS cpu_avg,
       maxIf(value, name = 'cpu_percent') AS cpu_max,
       avgIf(value, name = 'mem_percent') AS mem_avg,
       maxIf(value, name = 'mem_percent') AS mem_max,
       avgIf(value, name = 'mem_bytes') AS mem_bytes_avg
FROM <source>
WHERE name IN ('cpu_percent', 'mem_percent', 'mem_bytes')
  AND ts >= {{start:DateTime64(3, 'UTC')}} AND ts < {{end:DateTime64(3, 'UTC')}}
  <filters>
GROUP BY bucket, <group>
ORDER BY bucket, <group>
LIMIT {{limit:UInt32}}
"""

# Active users in an interval: distinct user_id with any business event in it. Once per part of the range
# (common.split_range): whole buckets merge the user sets of the active_15m projection (intervals of whole
# quarter hours) or of active_1m (the others); store/tables.py. Their aggregate and keys are written here
# exactly as there (<bucket>: common.bucket_of the unit), or ClickHouse reads the rows instead.
ACTIVE_BRANCH = """
SELECT <bucket> AS bucket, uniqExact(user_id) AS active_users
FROM <source>
WHERE kind = 'business' AND notEmpty(user_id) AND <time>
GROUP BY bucket"""

ACTIVE_SQL = """
SELECT * FROM <branches>
ORDER BY bucket
"""


def durations(store: Store, *, by: str = "operation", services: list[str] | None = None, names: list[str] | None = None,
              start: Any = None, end: Any = None, interval: str = "1h", limits: Limits = Limits()) -> QueryResult:
    """``durations``: per bucket, service and operation (or event type): count, min, max, avg, p50, p90, p95, p99."""
    timer = Timer()
    kind, column = DIMENSIONS[choice("by", by, DIMENSIONS)]
    rng = time_range(start, end, limits)
    step_s = parse_interval("interval", interval, INTERVALS)
    check_buckets(rng, step_s, limits)
    params: dict[str, Any] = {**rng.params(), "step": step_s * 1000, "kind": kind, "limit": limits.max_rows}
    filters = ""
    if svc := values("service", services):
        filters += " AND service IN {services:Array(String)}"
        params["services"] = svc
    if nm := values("name", names):
        filters += f" AND {column} IN {{names:Array(String)}}"
        params["names"] = nm
    src = table_source(store, limits, "events", rng)
    edges, whole, minute_params = split_minutes(rng)
    states = projection_states(store, src, EVENTS_MINUTE_PROJECTION) if whole else None
    if states:
        rows = _fill(DURATIONS_ROWS_STATES, column=column, source=src.sql, filters=filters)
        stored = _fill(DURATIONS_PROJECTION_STATES, column=column, filters=filters)
        sql = DURATIONS_STATES_SQL.replace("<branches>", union_of_states(rows, stored, states, edges, whole))
        table = run(store, sql, params | minute_params, limits)
    else:
        parts, part_params = split_range(rng, step_s)
        branch = _fill(DURATIONS_BRANCH, column=column, source=src.sql, filters=filters)
        table = run(store, DURATIONS_SQL.replace("<branches>", union_over(branch, parts)), params | part_params, limits)
    df = pl.from_arrow(table) if table.num_rows else None
    if df is not None:
        df = df.with_columns(
            [pl.col("q").list.get(i).alias(f"p{round(q * 100)}_ms") for i, q in enumerate(QUANTILES)]
        ).drop("q")
        table = df.to_arrow()
    else:
        table = table.drop_columns(["q"]) if "q" in table.column_names else table
    return QueryResult({"durations": table}, rng, timer.ms(), {"interval_s": step_s, "by": by, **sources_meta(src)})


def resources(store: Store, *, group: str = "host", hosts: list[str] | None = None, services: list[str] | None = None,
              start: Any = None, end: Any = None, interval: str = "1h", limits: Limits = Limits()) -> QueryResult:
    """``resources``: CPU and RAM per bucket and host (or service); ``active_users``: per bucket."""
    timer = Timer()
    group = choice("group", group, ("host", "service"))
    rng = time_range(start, end, limits)
    step_s = parse_interval("interval", interval, INTERVALS)
    check_buckets(rng, step_s, limits)
    params: dict[str, Any] = {**rng.params(), "step": step_s * 1000, "limit": limits.max_rows}
    filters = ""
    if h := values("host", hosts):
        filters += " AND host IN {hosts:Array(String)}"
        params["hosts"] = h
    if svc := values("service", services):
        filters += " AND service IN {services:Array(String)}"
        params["services"] = svc
    msrc, esrc = table_source(store, limits, "metrics", rng), table_source(store, limits, "events", rng)
    unit = QUARTER if step_s % UNIT_S[QUARTER] == 0 else MINUTE
    parts, part_params = split_range(rng, step_s, unit)
    branch = _fill(ACTIVE_BRANCH, bucket=bucket_of(unit), source=esrc.sql)
    active_sql = ACTIVE_SQL.replace("<branches>", union_over(branch, parts))
    res, active = together(
        lambda: run(store, _fill(RESOURCES_SQL, group=group, filters=filters, source=msrc.sql), params, limits),
        lambda: run(store, active_sql, params | part_params, limits),
    )
    active = fill_buckets(active, "bucket", rng, step_s, ("active_users",))
    return QueryResult({"resources": res, "active_users": active}, rng, timer.ms(), {"interval_s": step_s, "group": group, **sources_meta(msrc, esrc)})


def _fill(template: str, **parts: str) -> str:
    """``template`` with ``<name>`` replaced by validated identifiers / fixed SQL fragments."""
    for name, text in parts.items():
        template = template.replace(f"<{name}>", text)
    return template
