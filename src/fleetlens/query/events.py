"""Event search: filters over logs and business events, newest first, cursor pages, counts by level.

Free text matches whole words of the message (case-insensitive) through the message's ``text``
index: ``hasAllTokens(message, tokens)``; every word given must occur.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fleetlens.contract.schema import LEVELS
from fleetlens.query.common import (
    LOOKUP,
    RANGE_FILTER,
    SCAN,
    Limits,
    QueryError,
    QueryResult,
    Timer,
    TimeRange,
    decode_cursor,
    encode_cursor,
    sources_meta,
    split_range,
    table_source,
    union_over,
    from_ms,
    run,
    time_range,
    to_ms,
    together,
    values,
)
from fleetlens.query.trace import EVENT_COLUMNS
from fleetlens.store.client import Store

KINDS = ("log", "business")

# filter name -> column; each is "column IN {name:Array(String)}" when given
LIST_FILTERS = {
    "services": "service",
    "event_types": "event_type",
    "hosts": "host",
    "pods": "pod",
    "containers": "container",
    "nodes": "node",
    "loggers": "logger",
    "source_files": "source_file",
    "kinds": "kind",
    "operations": "operation",
    "event_ids": "event_id",
}

# The text index tokenizes with splitByNonAlpha: runs of ASCII letters and digits (other bytes split).
_TOKEN = re.compile(r"[A-Za-z0-9]+")


@dataclass
class EventFilter:
    """What to look for. Lists match any of their values; different filters must all match."""

    levels: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    event_types: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    loggers: list[str] = field(default_factory=list)
    source_files: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    text: str = ""

    def checked(self) -> EventFilter:
        """A copy with lists split on commas and levels/kinds checked against the contract's values."""
        out = EventFilter(text=self.text or "")
        out.levels = [v.lower() for v in values("level", self.levels)]
        values("level", out.levels, LEVELS)
        for name in LIST_FILTERS:
            setattr(out, name, values(name.rstrip("s"), getattr(self, name), KINDS if name == "kinds" else None))
        if len(out.text) > 1024:
            raise QueryError("text", "longer than 1024 characters")
        if out.text.strip() and not _TOKEN.search(out.text):
            raise QueryError("text", "has no word to search for (letters or digits)")
        return out


def _where(f: EventFilter, with_levels: bool) -> tuple[list[str], dict[str, Any]]:
    clauses = ["ts >= {start:DateTime64(3, 'UTC')}", "ts < {end:DateTime64(3, 'UTC')}"]  # first: the range
    params: dict[str, Any] = {}
    if with_levels and f.levels:
        clauses.append("level IN {levels:Array(String)}")
        params["levels"] = f.levels
    for name, column in LIST_FILTERS.items():
        if getattr(f, name):
            clauses.append(f"{column} IN {{{name}:Array(String)}}")
            params[name] = getattr(f, name)
    tokens = [t.lower() for t in _TOKEN.findall(f.text)]
    if tokens:
        clauses.append("hasAllTokens(message, {tokens:Array(String)})")
        params["tokens"] = tokens
    return clauses, params


LIST_SQL = """
SELECT {columns}
FROM {source}
WHERE {where}
ORDER BY ts DESC, event_id DESC
LIMIT {{limit:UInt32}}
"""

# Counts ignore the level filter, so a UI can show how many of each level the other filters match.
# Once per part of the range (common.split_range by minutes): with no filter but kind, service, event
# type and operation, whole minutes are counted from the events_1m projection instead of the rows.
# Any other filter (free text, host, …) makes it one count over the rows of the range, without ClickHouse
# weighing projections that cannot answer it: a search for "timeout" over an hour of a 189M-event store,
# 256 → 114 CPU-ms.
PROJECTION_FILTERS = frozenset({"kinds", "services", "event_types", "operations"})  # events_1m keys
COUNTS_BRANCH = """
SELECT level, count() AS n
FROM {source}
WHERE {where}
GROUP BY level"""

COUNTS_SQL = """
SELECT level, sum(n) AS events
FROM {branches}
GROUP BY level
ORDER BY level
"""


# The newest page of a range is looked for in a trailing window of the range first (one minute, then 16x
# wider each time it holds fewer than a page of matches, at last the whole range): a page of the last
# hours' events then sorts the matches of a minute instead of those of the whole range (docs/queries.md).
FIRST_WINDOW_MS = 60_000
WINDOW_GROWTH = 16


def _newest_page(store: Store, limits: Limits, rng: TimeRange, clauses: list[str], params: dict[str, Any], n: int,
                 cursor_ms: int | None) -> Any:
    """The first ``n`` matches in (ts DESC, event_id DESC) order. Exact: when the window [lo, hi) holds ``n``
    matches, every match outside it is older than all of them, so they are the range's first ``n`` too."""
    hi = rng.end_ms if cursor_ms is None else min(rng.end_ms, cursor_ms + 1)
    width = FIRST_WINDOW_MS
    lane = SCAN if "tokens" in params else LOOKUP
    while True:
        lo = max(rng.start_ms, hi - width)
        window = TimeRange(from_ms(lo), rng.end)
        sql = LIST_SQL.format(columns=EVENT_COLUMNS, source=table_source(store, limits, "events", window).sql,
                              where=" AND ".join([*clauses, "ts >= {window_lo:DateTime64(3, 'UTC')}"]))
        # a page of a free-text search can read the whole range: a scan; other pages read a few windows
        page = run(store, sql, params | {"window_lo": window.start}, limits, lane=lane, projections=False)
        if page.num_rows >= n or lo <= rng.start_ms:
            return page
        width *= WINDOW_GROWTH


def search_events(store: Store, flt: EventFilter | None = None, *, start: Any = None, end: Any = None,
                  limit: int | None = None, cursor: str | None = None, counts: bool = True,
                  limits: Limits = Limits()) -> QueryResult:
    """A page of matching events, newest first (``events``), and counts by level (``counts``).

    ``meta.next_cursor`` continues after this page (None on the last page); counts cover the whole
    range (not just the page) and ignore the level filter.
    """
    timer = Timer()
    f = (flt or EventFilter()).checked()
    rng = time_range(start, end, limits)
    n = limits.limit(limit)
    after = decode_cursor("cursor", cursor, (int, str))
    clauses, params = _where(f, with_levels=True)
    params |= {**rng.params(), "limit": n}
    if after is not None:
        # strictly after the previous page's last row in (ts DESC, event_id DESC) order
        clauses.append("ts <= {cur_ts:DateTime64(3, 'UTC')} AND (ts < {cur_ts:DateTime64(3, 'UTC')} OR event_id < {cur_id:String})")
        params |= {"cur_ts": from_ms(after[0]), "cur_id": after[1]}
    src = table_source(store, limits, "events", rng)
    source = src.sql
    calls = [lambda: _newest_page(store, limits, rng, clauses, params, n, None if after is None else after[0])]
    if counts:
        count_clauses, count_params = _where(f, with_levels=False)
        projectable = not f.text and all(not getattr(f, name) for name in LIST_FILTERS if name not in PROJECTION_FILTERS)
        parts, part_params = split_range(rng, 60) if projectable else ([RANGE_FILTER], {})
        branch = COUNTS_BRANCH.format(source=source, where=" AND ".join([*count_clauses[2:], "<time>"]))
        calls.append(lambda: run(store, COUNTS_SQL.format(branches=union_over(branch, parts)),
                                 count_params | rng.params() | part_params, limits, projections=projectable))
    page, *rest = together(*calls)
    tables = {"events": page, **({"counts": rest[0]} if counts else {})}
    next_cursor = None
    if page.num_rows == n:
        last = page.slice(n - 1).to_pylist()[0]
        next_cursor = encode_cursor(to_ms(last["ts"]), last["event_id"])
    return QueryResult(tables, rng, timer.ms(), {"next_cursor": next_cursor, **sources_meta(src)})
