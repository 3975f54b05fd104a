"""Hopping event-time windows counted incrementally, in Polars.

A sliding window of ``size`` is approximated by windows of that size starting every ``size / 8``:
any burst that fits in 7/8 of the size lies wholly inside one of them, and every window has a
start on a fixed grid, so the same events always give the same windows (deterministic alert ids,
whatever the batching). Counts only grow with new events, so a count threshold can fire as soon
as it is crossed, before the window closes.
"""

from __future__ import annotations

import polars as pl

HOPS_PER_WINDOW = 8


def window_starts(ts: pl.Expr, size_ms: int, slide_ms: int) -> pl.Expr:
    """A list of the starts of every window of the grid that holds ``ts``."""
    n = size_ms // slide_ms
    last = (ts // slide_ms) * slide_ms
    return pl.int_ranges(last - (n - 1) * slide_ms, last + slide_ms, slide_ms)


class WindowCounts:
    """Event counts per (key columns, window start) over hopping windows; pruned by the watermark."""

    def __init__(self, keys: list[str], size_ms: int, slide_ms: int | None = None):
        self.keys = keys
        self.size_ms = size_ms
        self.slide_ms = slide_ms or max(1, size_ms // HOPS_PER_WINDOW)
        self.state = pl.DataFrame(schema={**{k: pl.String for k in keys}, "wstart": pl.Int64, "n": pl.UInt32})

    def add(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Count ``rows`` (``ts`` + the key columns); returns the updated rows of the windows they touched."""
        if rows.height == 0:
            return self.state.clear()
        new = (
            rows.select(*self.keys, window_starts(pl.col("ts"), self.size_ms, self.slide_ms).alias("wstart"))
            .explode("wstart")
            .group_by(*self.keys, "wstart")
            .agg(pl.len().cast(pl.UInt32).alias("n"))
        )
        merged = pl.concat([self.state, new]).group_by(*self.keys, "wstart").agg(pl.col("n").sum())
        self.state = merged
        return merged.join(new.select(*self.keys, "wstart"), on=[*self.keys, "wstart"], how="semi")

    def prune(self, watermark_ms: int) -> None:
        """Forget windows that ended at or before the watermark."""
        if self.state.height:
            self.state = self.state.filter(pl.col("wstart") + self.size_ms > watermark_ms)


class Fired:
    """(key, window start) pairs a rule already reported, so each window fires once."""

    def __init__(self, size_ms: int):
        self.size_ms = size_ms
        self._seen: dict[tuple[str, int], None] = {}

    def new(self, key: str, wstart: int) -> bool:
        """True the first time (key, wstart) is seen."""
        if (key, wstart) in self._seen:
            return False
        self._seen[(key, wstart)] = None
        return True

    def prune(self, watermark_ms: int) -> None:
        """Forget windows that ended at or before the watermark."""
        self._seen = {k: None for k in self._seen if k[1] + self.size_ms > watermark_ms}


class Pending:
    """Rows held until the watermark makes them final, then released in event-time order.

    Rules that count over final rows only decide the same way whatever order the partitions'
    events arrive in: which window crosses a threshold first, hence the alert id, is then a
    function of the events, not of the delivery (the cost: the allowed lateness of delay).
    """

    def __init__(self) -> None:
        self._frames: list[pl.DataFrame] = []

    def add(self, rows: pl.DataFrame) -> None:
        """Hold ``rows`` (they need a ``ts`` column)."""
        if rows.height:
            self._frames.append(rows)

    def release(self, watermark_ms: int) -> pl.DataFrame | None:
        """The held rows older than the watermark, sorted by ``ts`` (and ``event_id`` when present); None if none."""
        if not self._frames:
            return None
        held = pl.concat(self._frames) if len(self._frames) > 1 else self._frames[0]
        final = held.filter(pl.col("ts") < watermark_ms)
        rest = held.filter(pl.col("ts") >= watermark_ms)
        self._frames = [rest] if rest.height else []
        if final.height == 0:
            return None
        return final.sort(["ts", "event_id"] if "event_id" in final.columns else ["ts"])
