"""Simultaneous users viewing and buying over time (the contract's definitions).

Viewing at t: distinct ``user_id`` with a ``page_view`` in (t − W, t]; buying at t: distinct
``user_id`` with ``reserve``, ``payment_attempt`` or ``buy`` in (t − W, t]; W is
``settings.query.users_window_min`` (5 min). t runs over the multiples of the step inside the range.
An event at ts counts at every t with ts ≤ t < ts + W, so each event is expanded to those instants
and users are counted exactly (``uniqExact``) per instant. The rows come from the ``users_1m``
rollup (one row per minute, class and user, kept by a materialized view): ~20x fewer rows than
the events, same answer (see ``store/tables.py``).
"""

from __future__ import annotations

from typing import Any

from fleetlens.query.common import (
    Limits,
    QueryError,
    QueryResult,
    Timer,
    check_buckets,
    fill_buckets,
    from_ms,
    parse_interval,
    run,
    sources_meta,
    time_range,
    users_source,
)
from fleetlens.store.client import Store

VIEWING_OPS = ("page_view",)
BUYING_OPS = ("reserve", "payment_attempt", "buy")

# users_1m holds (minute, class, user) with minute = event time rounded up to the minute, so an event
# of minute m counts at every t with m <= t < m + W, exactly as its own ts would for whole-minute t.
# Users are counted by user_hash: the SipHash128 uniqExact(user_id) would compute, stored (store/tables.py).
SQL = """
SELECT fromUnixTimestamp64Milli(t_ms, 'UTC') AS t,
       uniqExactIf(user_hash, class = 'viewing') AS viewing,
       uniqExactIf(user_hash, class = 'buying') AS buying
FROM
(
    SELECT user_hash, class, toInt64(toUnixTimestamp(minute)) * 1000 AS m,
           arrayJoin(range(intDiv(m + {step:Int64} - 1, {step:Int64}) * {step:Int64}, m + {window:Int64}, {step:Int64})) AS t_ms
    FROM <source>
    WHERE minute > {lo:DateTime64(3, 'UTC')} AND minute < {end:DateTime64(3, 'UTC')}
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
    if step_s % 60:
        raise QueryError("step", f"must be whole minutes (1m, 5m, 1h, …), got {step!r}")
    check_buckets(rng, step_s, limits, "step")
    step_ms, window_ms = step_s * 1000, window * 60_000
    first = -(-rng.start_ms // step_ms) * step_ms
    params = {
        "step": step_ms, "window": window_ms, "first": first, "end_ms": rng.end_ms, "end": rng.end,
        "lo": from_ms(first - window_ms),
    }
    src = users_source(store, limits, params["lo"], rng.end)
    table = run(store, SQL.replace("<source>", src.sql), params, limits)
    filled = fill_buckets(table, "t", rng, step_s, ("viewing", "buying"), first=first)
    return QueryResult({"users": filled}, rng, timer.ms(), {"step_s": step_s, "window_min": window, **sources_meta(src)})
