"""Minute-by-minute rules judged against each key's own recent past (the median of its last closed minutes).

Partial aggregates per (key, minute) are merged batch by batch; a minute is judged once the
watermark passes its end. A minute that fired is left out of the baseline, so a long incident
does not become the new normal.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import median
from typing import Any

import polars as pl

from fleetlens.detect.frame import Frame
from fleetlens.detect.hits import Hit
from fleetlens.detect.rules.base import Rule

MINUTE_MS = 60_000
LOG_BASE = math.log(1.02)  # latency histogram buckets 2 % wide: p95 within ~1 %


class MinuteBaselineRule(Rule):
    """Shared machinery: per-minute partial aggregates, closing, baselines, judging."""

    aggs: tuple[str, ...] = ()
    zero_fill = False  # a closed minute without rows counts as zero (traffic drop)

    def __init__(self, name, config, allowed_lateness_ms):
        super().__init__(name, config, allowed_lateness_ms)
        self.partials: pl.DataFrame | None = None
        self.baselines: dict[str, deque[float]] = {}
        self.closed_until = -1  # minutes starting before this are closed

    @property
    def horizon_ms(self) -> int:
        return (self.config.baseline_minutes + 2) * MINUTE_MS + self.allowed_lateness_ms

    def partial(self, frame: Frame) -> pl.DataFrame:
        """Rows ``key``, ``minute`` and the ``aggs`` columns for one batch (summed when merged)."""
        raise NotImplementedError

    def value(self, closed: pl.DataFrame) -> pl.DataFrame:
        """``key``, ``minute``, ``value`` (+ evidence columns) of closed minutes."""
        raise NotImplementedError

    def judge(self, row: dict[str, Any], baseline: float) -> bool:
        """Whether a closed minute is anomalous against the baseline."""
        raise NotImplementedError

    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        part = self.partial(frame)
        if self.closed_until >= 0:
            part = part.filter(pl.col("minute") >= self.closed_until)  # minutes already judged: too late
        if part.height:
            merged = part if self.partials is None else pl.concat([self.partials, part])
            self.partials = merged.group_by("key", "minute").agg(pl.col(a).sum() for a in self.aggs)
        return []

    def advance(self, watermark_ms: int) -> list[Hit]:
        close_before = (watermark_ms // MINUTE_MS) * MINUTE_MS  # minutes ending at or before the watermark
        if self.partials is None or close_before <= self.closed_until:
            return []
        closed = self.partials.filter(pl.col("minute") < close_before)
        self.partials = self.partials.filter(pl.col("minute") >= close_before)
        first = self.closed_until if self.closed_until >= 0 else (int(closed["minute"].min()) if closed.height else close_before)  # type: ignore[arg-type]
        self.closed_until = close_before
        values = self.value(closed) if closed.height else pl.DataFrame()
        by_minute: dict[int, dict[str, dict[str, Any]]] = {}
        for row in values.iter_rows(named=True):
            by_minute.setdefault(row["minute"], {})[row["key"]] = row
        hits = []
        for minute in range(first, close_before, MINUTE_MS):
            rows = by_minute.get(minute, {})
            keys = set(rows) | (set(self.baselines) if self.zero_fill else set())
            for key in sorted(keys):
                row = rows.get(key) or {"key": key, "minute": minute, "value": 0.0}
                hits += self._judge_minute(key, minute, row)
        return hits

    def _judge_minute(self, key: str, minute: int, row: dict[str, Any]) -> list[Hit]:
        history = self.baselines.setdefault(key, deque(maxlen=self.config.baseline_minutes))
        fired = False
        hits = []
        if len(history) >= self.config.min_baseline_minutes:
            baseline = median(history)
            if self.judge(row, baseline):
                fired = True
                evidence = {k: v for k, v in row.items() if k not in ("key", "minute")}
                hits.append(self.hit(key, minute, minute + MINUTE_MS, minute + MINUTE_MS - 1,
                                     baseline=round(baseline, 4), baseline_minutes=len(history), **evidence))
        if not fired:
            history.append(float(row["value"]))
        return hits


def _minute(ts: pl.Expr) -> pl.Expr:
    return (ts // MINUTE_MS) * MINUTE_MS


class ErrorRateSpikeRule(MinuteBaselineRule):
    """``error_rate_spike``: a service's share of ``error`` logs in a minute against its baseline share."""

    aggs = ("logs", "errors")

    def partial(self, frame: Frame) -> pl.DataFrame:
        return (
            frame.events.filter(pl.col("kind") == "log")
            .group_by(pl.col("service").alias("key"), _minute(pl.col("ts")).alias("minute"))
            .agg(pl.len().alias("logs"), (pl.col("level") == "error").sum().alias("errors"))
        )

    def value(self, closed: pl.DataFrame) -> pl.DataFrame:
        return closed.with_columns((pl.col("errors") / pl.col("logs")).alias("value"))

    def judge(self, row: dict[str, Any], baseline: float) -> bool:
        c = self.config
        return row["errors"] >= c.min_errors and row["value"] > c.floor and row["value"] > c.factor * baseline


class LatencyRegressionRule(MinuteBaselineRule):
    """``latency_regression``: p95 of an operation's duration_ms in a minute against its baseline p95."""

    aggs = ("n",)

    def partial(self, frame: Frame) -> pl.DataFrame:
        return (
            frame.events.filter((pl.col("kind") == "business") & pl.col("duration_ms").is_not_null())
            .group_by(
                pl.col("operation").alias("key"),
                _minute(pl.col("ts")).alias("minute"),
                ((pl.col("duration_ms") + 1).log() / LOG_BASE).round().cast(pl.Int32).alias("bucket"),
            )
            .agg(pl.len().alias("n"))
        )

    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        part = self.partial(frame)
        if self.closed_until >= 0:
            part = part.filter(pl.col("minute") >= self.closed_until)
        if part.height:
            merged = part if self.partials is None else pl.concat([self.partials, part])
            self.partials = merged.group_by("key", "minute", "bucket").agg(pl.col("n").sum())
        return []

    def value(self, closed: pl.DataFrame) -> pl.DataFrame:
        return (
            closed.sort("bucket")
            .group_by("key", "minute")
            .agg(
                pl.col("n").sum().alias("samples"),
                pl.col("bucket").filter(pl.col("n").cum_sum() >= 0.95 * pl.col("n").sum()).first().alias("b95"),
            )
            .with_columns(((pl.col("b95") * LOG_BASE).exp() - 1).round(1).alias("value"))
            .drop("b95")
        )

    def judge(self, row: dict[str, Any], baseline: float) -> bool:
        return row["samples"] >= self.config.min_samples and row["value"] > self.config.factor * baseline

    def _judge_minute(self, key: str, minute: int, row: dict[str, Any]) -> list[Hit]:
        if row.get("samples", 0) < self.config.min_samples:
            return []  # too few to judge, and too few to be a baseline
        return super()._judge_minute(key, minute, row)


class TrafficDropRule(MinuteBaselineRule):
    """``traffic_drop``: page views in a minute below a share of the baseline."""

    aggs = ("value",)
    zero_fill = True

    def partial(self, frame: Frame) -> pl.DataFrame:
        return (
            frame.events.filter(pl.col("operation") == "page_view")
            .group_by(pl.lit("page_view").alias("key"), _minute(pl.col("ts")).alias("minute"))
            .agg(pl.len().cast(pl.Float64).alias("value"))
        )

    def value(self, closed: pl.DataFrame) -> pl.DataFrame:
        return closed

    def judge(self, row: dict[str, Any], baseline: float) -> bool:
        return baseline >= self.config.min_baseline and row["value"] < self.config.ratio * baseline
