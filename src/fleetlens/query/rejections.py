"""Rejections: how many lines were dead-lettered, by field and reason, over a range of receipt time."""

from __future__ import annotations

from typing import Any

from fleetlens.query.common import (
    LOOKUP,
    Limits,
    QueryResult,
    Timer,
    run,
    sources_meta,
    table_source,
    time_range,
    together,
)
from fleetlens.store.client import Store

BY_FIELD_SQL = """
SELECT field, count() AS rejections
FROM <source>
WHERE received_at >= {start:DateTime64(3, 'UTC')} AND received_at < {end:DateTime64(3, 'UTC')}
GROUP BY field
ORDER BY rejections DESC, field
LIMIT {limit:UInt32}
"""

BY_REASON_SQL = """
SELECT field, reason, count() AS rejections, any(event_id) AS example_event_id
FROM <source>
WHERE received_at >= {start:DateTime64(3, 'UTC')} AND received_at < {end:DateTime64(3, 'UTC')}
GROUP BY field, reason
ORDER BY rejections DESC, field, reason
LIMIT {limit:UInt32}
"""


def rejection_counts(store: Store, *, start: Any = None, end: Any = None, limit: int | None = None,
                     limits: Limits = Limits()) -> QueryResult:
    """``by_field`` and ``by_reason`` (most frequent first, at most ``limit`` rows each); ``meta.total``."""
    timer = Timer()
    rng = time_range(start, end, limits)
    params = {**rng.params(), "limit": limits.limit(limit)}
    src = table_source(store, limits, "rejections", rng)
    by_field, by_reason = together(
        lambda: run(store, BY_FIELD_SQL.replace("<source>", src.sql), params, limits, lane=LOOKUP),
        lambda: run(store, BY_REASON_SQL.replace("<source>", src.sql), params, limits, lane=LOOKUP),
    )
    total = sum(by_field.column("rejections").to_pylist()) if by_field.num_rows else 0
    return QueryResult({"by_field": by_field, "by_reason": by_reason}, rng, timer.ms(), {"total": total, **sources_meta(src)})
