"""Simultaneous users viewing and buying over time (the contract's definitions).

Viewing at t: distinct ``user_id`` with a ``page_view`` in (t − W, t]; buying at t: distinct
``user_id`` with ``reserve``, ``payment_attempt`` or ``buy`` in (t − W, t]; W is
``settings.query.users_window_min`` (5 min). t runs over the multiples of the step inside the range.
An event at ts counts at every t with ts ≤ t < ts + W, so each event is expanded to those instants
and users are counted exactly (``uniqExact``) per instant.
"""

from __future__ import annotations

from typing import Any

from fleetlens.query.common import (
    Limits,
    QueryError,
    QueryResult,
    Timer,
    check_buckets,
    events_source,
    fill_buckets,
    from_ms,
    parse_interval,
    run,
    time_range,
)
from fleetlens.store.client import Store

VIEWING_OPS = ("page_view",)
BUYING_OPS = ("reserve", "payment_attempt", "buy")

SQL = """
SELECT fromUnixTimestamp64Milli(t_ms, 'UTC') AS t,
       uniqExactIf(user_id, operation IN {viewing:Array(String)}) AS viewing,
       uniqExactIf(user_id, operation IN {buying:Array(String)}) AS buying
FROM
(
    SELECT user_id, operation, toUnixTimestamp64Milli(ts) AS ms,
           arrayJoin(range(intDiv(ms + {step:Int64} - 1, {step:Int64}) * {step:Int64}, ms + {window:Int64}, {step:Int64})) AS t_ms
    FROM {source}
    WHERE kind = 'business' AND operation IN {ops:Array(String)} AND user_id != ''
      AND ts > {lo:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}
)
WHERE t_ms >= {first:Int64} AND t_ms < {end_ms:Int64}
GROUP BY t_ms
ORDER BY t_ms
"""


def simultaneous_users(store: Store, *, start: Any = None, end: Any = None, step: str = "1m",
                       window_min: int | None = None, limits: Limits = Limits()) -> QueryResult:
    """``users``: one row per instant t (multiples of ``step`` in [start, end)): ``viewing``, ``buying``."""
    timer = Timer()
    rng = time_range(start, end, limits)
    step_s = parse_interval("step", step, minimum_s=60)
    window = window_min if window_min is not None else limits.users_window_min
    if not 1 <= window <= 24 * 60:
        raise QueryError("window_min", f"must be between 1 and 1440 minutes, got {window}")
    check_buckets(rng, step_s, limits, "step")
    step_ms, window_ms = step_s * 1000, window * 60_000
    first = -(-rng.start_ms // step_ms) * step_ms
    params = {
        "step": step_ms, "window": window_ms, "first": first, "end_ms": rng.end_ms, "end": rng.end,
        "lo": from_ms(first - window_ms),
        "viewing": list(VIEWING_OPS), "buying": list(BUYING_OPS), "ops": [*VIEWING_OPS, *BUYING_OPS],
    }
    table = run(store, SQL.replace("{source}", events_source(store, limits)), params, limits)
    filled = fill_buckets(table, "t", rng, step_s, ("viewing", "buying"), first=first)
    return QueryResult({"users": filled}, rng, timer.ms(), {"step_s": step_s, "window_min": window})
