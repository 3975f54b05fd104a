"""The micro-batch engine: late-row accounting, watermark, every rule over each batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from fleetlens.detect.config import RulesConfig
from fleetlens.detect.frame import Frame
from fleetlens.detect.hits import Hit
from fleetlens.detect.rules import build_rules
from fleetlens.detect.watermark import NEVER, Watermarks


@dataclass
class EngineStats:
    """What the engine has seen."""

    events: int = 0  #: events and metric samples taken in
    late: int = 0  #: rows older than the watermark when they arrived: counted here, not used
    hits: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


class Engine:
    """Runs the enabled rules over micro-batches; returns their hits in event-time order."""

    def __init__(self, config: RulesConfig, only: set[str] | None = None, idle_s: float = 30.0):
        self.config = config
        self.rules = build_rules(config, only)
        self.watermarks = Watermarks(int(config.allowed_lateness_s * 1000), idle_s)
        self.stats = EngineStats()

    @property
    def horizon_ms(self) -> int:
        """The event history the rules' state covers: what a restart re-reads."""
        return max((r.horizon_ms for r in self.rules), default=0)

    def process_arrow(self, events: pa.Table, metrics: pa.Table, partition: str = "") -> list[Hit]:
        """``process`` for the decoder's Arrow tables."""
        return self.process(Frame.from_arrow(events, metrics, partition))

    def process(self, frame: Frame) -> list[Hit]:
        """One micro-batch of one partition: late rows counted and left out, rules run, windows closed."""
        watermark = self.watermarks.watermark()
        self.stats.events += frame.rows
        if watermark != NEVER:
            on_time = frame.filter_ts(watermark)
            self.stats.late += frame.rows - on_time.rows
            frame = on_time
        hits: list[Hit] = []
        for rule in self.rules:
            hits += rule.observe(frame, watermark)
        self.watermarks.observe(frame.partition, frame.max_ts())
        hits += self.advance()
        return self._count(hits)

    def advance(self) -> list[Hit]:
        """Close what the current watermark completes (also called on idle ticks)."""
        watermark = self.watermarks.watermark()
        if watermark == NEVER:
            return []
        hits: list[Hit] = []
        for rule in self.rules:
            hits += rule.advance(watermark)
        return hits

    def _count(self, hits: list[Hit]) -> list[Hit]:
        hits.sort(key=lambda h: (h.trigger_ms, h.rule, h.key))
        self.stats.hits += len(hits)
        for h in hits:
            self.stats.by_rule[h.rule] = self.stats.by_rule.get(h.rule, 0) + 1
        return hits
