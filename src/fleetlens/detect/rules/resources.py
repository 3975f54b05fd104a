"""``cpu_saturation`` / ``ram_saturation``: every sample of a host's metric at or above a threshold for a while."""

from __future__ import annotations

import polars as pl

from fleetlens.detect.frame import Frame
from fleetlens.detect.hits import Hit
from fleetlens.detect.rules.base import Rule


class SaturationRule(Rule):
    """Tumbling windows of ``for_s`` per host: judged when the watermark passes the window's end."""

    def __init__(self, name, config, allowed_lateness_ms):
        super().__init__(name, config, allowed_lateness_ms)
        self.size_ms = config.for_s * 1000
        self.partials: pl.DataFrame | None = None
        self.closed_until = -1

    @property
    def horizon_ms(self) -> int:
        return self.size_ms + self.allowed_lateness_ms

    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        rows = frame.metrics.filter((pl.col("name") == self.config.metric) & (pl.col("pod") == ""))
        if rows.height == 0:
            return []
        part = rows.group_by(pl.col("host").alias("key"), ((pl.col("ts") // self.size_ms) * self.size_ms).alias("wstart")).agg(
            pl.len().alias("samples"),
            (pl.col("value") >= self.config.threshold).sum().alias("saturated"),
            pl.col("value").min().alias("min_value"),
        )
        if self.closed_until >= 0:
            part = part.filter(pl.col("wstart") >= self.closed_until)
        merged = part if self.partials is None else pl.concat([self.partials, part])
        self.partials = merged.group_by("key", "wstart").agg(
            pl.col("samples").sum(), pl.col("saturated").sum(), pl.col("min_value").min()
        )
        return []

    def advance(self, watermark_ms: int) -> list[Hit]:
        close_before = (watermark_ms // self.size_ms) * self.size_ms
        if self.partials is None or close_before <= self.closed_until:
            return []
        closed = self.partials.filter(pl.col("wstart") < close_before)
        self.partials = self.partials.filter(pl.col("wstart") >= close_before)
        self.closed_until = close_before
        fired = closed.filter(
            (pl.col("samples") >= self.config.min_samples) & (pl.col("saturated") == pl.col("samples"))
        ).sort("wstart", "key")
        return [
            self.hit(host, wstart, wstart + self.size_ms, wstart + self.size_ms - 1, metric=self.config.metric,
                     samples=samples, min_value=min_value, threshold=self.config.threshold)
            for host, wstart, samples, _sat, min_value in fired.iter_rows()
        ]
