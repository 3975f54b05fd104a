"""Anomalies: the alerts the detector raised, filtered by rule, key, severity, status and time.

An alert belongs to the range when its [ts_start, ts_end] overlaps it. Newest first, cursor pages.
The table is small and alerts change status, so it is always read with FINAL (latest row per id).
"""

from __future__ import annotations

from typing import Any

from fleetlens.query.common import (
    LOOKUP,
    Limits,
    QueryResult,
    Timer,
    decode_cursor,
    encode_cursor,
    from_ms,
    run,
    time_range,
    to_ms,
    values,
)
from fleetlens.store.client import Store

SQL = """
SELECT id, rule, key, severity, ts_start, ts_end, status, evidence, updated_at
FROM alerts FINAL
WHERE ts_start < {end:DateTime64(3, 'UTC')} AND ts_end >= {start:DateTime64(3, 'UTC')}
  {filters}
ORDER BY ts_start DESC, id DESC
LIMIT {limit:UInt32}
"""

FILTERS = {"rules": "rule", "keys": "key", "severities": "severity", "statuses": "status"}


def anomalies(store: Store, *, rules: list[str] | None = None, keys: list[str] | None = None,
              severities: list[str] | None = None, statuses: list[str] | None = None, start: Any = None,
              end: Any = None, limit: int | None = None, cursor: str | None = None,
              limits: Limits = Limits()) -> QueryResult:
    """``alerts``: a page of alerts overlapping the range, newest first; ``meta.next_cursor`` continues."""
    timer = Timer()
    rng = time_range(start, end, limits)
    n = limits.limit(limit)
    params: dict[str, Any] = {**rng.params(), "limit": n}
    filters = ""
    given = {"rules": rules, "keys": keys, "severities": severities, "statuses": statuses}
    for name, column in FILTERS.items():
        if v := values(column, given[name]):
            filters += f" AND {column} IN {{{name}:Array(String)}}"
            params[name] = v
    after = decode_cursor("cursor", cursor, (int, str))
    if after is not None:
        filters += (" AND ts_start <= {cur_ts:DateTime64(3, 'UTC')}"
                    " AND (ts_start < {cur_ts:DateTime64(3, 'UTC')} OR id < {cur_id:String})")
        params |= {"cur_ts": from_ms(after[0]), "cur_id": after[1]}
    page = run(store, SQL.replace("{filters}", filters), params, limits, lane=LOOKUP)
    next_cursor = None
    if page.num_rows == n:
        last = page.slice(n - 1).to_pylist()[0]
        next_cursor = encode_cursor(to_ms(last["ts_start"]), last["id"])
    return QueryResult({"alerts": page}, rng, timer.ms(), {"next_cursor": next_cursor})
