"""Business metrics per interval, and payment retries with their eventual outcome by provider.

Transaction: a ``buy`` with ``outcome = success``. Retry: a purchase (``action_id``) with more than
one ``payment_attempt``; its eventual outcome is the outcome of its highest ``attempt``. A retry is
counted in the bucket of its last attempt, and only attempts inside the range are seen.

Retries read the ``payment_attempts`` rollup (every payment attempt, kept by a materialized view), in two
steps: the purchases with more than one attempt row in the range, found by ``action_hash`` (a UInt64 hash of
``action_id``: cheap to group), then only those purchases' attempts grouped by ``action_id``. Every retry is
among the first step's hashes (a hash collision or a redelivered copy only adds a purchase the second
step then drops), so the answer is the same as grouping every attempt.
"""

from __future__ import annotations

from typing import Any

from fleetlens.query.common import (
    MINUTE_BUCKET,
    Limits,
    QueryResult,
    Timer,
    check_buckets,
    fill_buckets,
    parse_interval,
    rollup_source,
    run,
    sources_meta,
    split_range,
    table_source,
    time_range,
    together,
    union_over,
)
from fleetlens.store.client import Store
from fleetlens.store.tables import PAYMENT_ATTEMPTS_ROLLUP

INTERVALS = ("15m", "1h", "3h", "1d")

# Buckets are epoch-aligned multiples of the interval (UTC), like toStartOfInterval.
BUCKET = "fromUnixTimestamp64Milli(intDiv(toUnixTimestamp64Milli({ts}), {{step:Int64}}) * {{step:Int64}}, 'UTC')"

# Counts and amounts per bucket, operation and outcome, once per part of the range (common.split_range by
# minutes: every whole minute comes from the events_1m projection, only the seconds at either end from rows),
# then summed and pivoted per bucket: sums of parts are the bucket's sums.
TOTALS_BRANCH = f"""
SELECT {MINUTE_BUCKET} AS bucket, operation, outcome, count() AS n, sum(amount) AS amt
FROM {{source}}
WHERE kind = 'business' AND <time>
GROUP BY bucket, operation, outcome"""

TOTALS_SQL = """
SELECT bucket,
       sumIf(n, operation = 'buy' AND outcome = 'success') AS transactions,
       round(sumIf(amt, operation = 'buy' AND outcome = 'success'), 2) AS transaction_amount,
       sumIf(n, operation = 'buy' AND outcome = 'failure') AS failed_buys,
       sumIf(n, operation = 'page_view') AS page_views,
       sumIf(n, operation = 'reserve') AS reservations,
       sumIf(n, operation = 'cancel_reservation') AS cancellations,
       sumIf(n, operation = 'refund') AS refunds,
       round(sumIf(amt, operation = 'refund'), 2) AS refund_amount
FROM {branches}
GROUP BY bucket
ORDER BY bucket
"""

RETRIES_SQL = f"""
SELECT {BUCKET.format(ts='last_ts')} AS bucket,
       provider,
       count() AS retries,
       countIf(outcome = 'success') AS succeeded,
       countIf(outcome = 'failure') AS failed,
       sum(attempts) AS attempts
FROM
(
    SELECT action_id,
           argMax(provider, attempt) AS provider,
           argMax(outcome, attempt) AS outcome,
           max(ts) AS last_ts,
           uniqExact(event_id) AS attempts
    FROM {{source}}
    WHERE ts >= {{start:DateTime64(3, 'UTC')}} AND ts < {{end:DateTime64(3, 'UTC')}}
      AND action_hash GLOBAL IN (
          SELECT action_hash FROM {{source}}
          WHERE ts >= {{start:DateTime64(3, 'UTC')}} AND ts < {{end:DateTime64(3, 'UTC')}}
          GROUP BY action_hash
          HAVING count() > 1)
    GROUP BY action_id
    HAVING attempts > 1
)
GROUP BY bucket, provider
ORDER BY bucket, provider
LIMIT {{limit:UInt32}}
"""

TOTAL_COLUMNS = ("transactions", "transaction_amount", "failed_buys", "page_views", "reservations", "cancellations",
                 "refunds", "refund_amount")


def business_metrics(store: Store, *, start: Any = None, end: Any = None, interval: str = "1h",
                     limits: Limits = Limits()) -> QueryResult:
    """``totals``: one row per bucket (every bucket of the range, zeros included); ``retries``: per bucket and provider."""
    timer = Timer()
    rng = time_range(start, end, limits)
    step_s = parse_interval("interval", interval, INTERVALS)
    check_buckets(rng, step_s, limits)
    src = table_source(store, limits, "events", rng)
    source = src.sql
    params = {**rng.params(), "step": step_s * 1000, "limit": limits.max_rows}
    parts, part_params = split_range(rng, 60)
    branches = union_over(TOTALS_BRANCH.replace("{source}", source), parts)
    attempts = rollup_source(store, limits, PAYMENT_ATTEMPTS_ROLLUP, rng.start_ms, rng.end_ms)
    totals, retries = together(
        lambda: run(store, TOTALS_SQL.replace("{branches}", branches), params | part_params, limits),
        lambda: run(store, RETRIES_SQL.replace("{source}", attempts.sql), params, limits),
    )
    totals = fill_buckets(totals, "bucket", rng, step_s, TOTAL_COLUMNS)
    return QueryResult({"totals": totals, "retries": retries}, rng, timer.ms(), {"interval_s": step_s, **sources_meta(src, attempts)})
