"""Instant rules: decided on single events as they arrive."""

from __future__ import annotations

from collections import deque

import polars as pl

from fleetlens.detect.frame import Frame
from fleetlens.detect.hits import Hit
from fleetlens.detect.rules.base import Rule


class ErrorLogRule(Rule):
    """``error_log``: an ``error`` log of a listed event_type alerts on its own, keyed by service."""

    @property
    def horizon_ms(self) -> int:
        return 0

    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        rows = frame.events.filter(
            (pl.col("level") == "error") & pl.col("event_type").is_in(self.config.event_types)
        ).select("ts", "service", "host", "event_type", "event_id")
        return [
            self.hit(service, ts, ts + 1, ts, event_type=etype, host=host, event_ids=[eid])
            for ts, service, host, etype, eid in rows.sort("ts").iter_rows()
        ]


class ProviderErrorStreakRule(Rule):
    """``provider_error_streak``: N payment attempts in a row (event-time order) fail on one provider.

    Attempts are buffered per provider for the allowed lateness, sorted by event time, so a late
    success between failures still breaks the streak when it arrives in time.
    """

    def __init__(self, name, config, allowed_lateness_ms):
        super().__init__(name, config, allowed_lateness_ms)
        self._attempts: dict[str, deque[tuple[int, bool, str]]] = {}
        self._fired: dict[str, int] = {}  # provider -> start of the streak that fired last

    @property
    def horizon_ms(self) -> int:
        return self.allowed_lateness_ms + 60_000

    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        rows = frame.events.filter(pl.col("operation") == "payment_attempt").select(
            "provider", "ts", (pl.col("outcome") == "failure") & pl.col("error_code").is_in(self.config.error_codes), "event_id"
        )
        if rows.height == 0:
            return []
        hits = []
        for (provider,), group in rows.group_by("provider"):
            buf = self._attempts.setdefault(provider, deque())
            buf.extend(group.iter_rows())
            ordered = sorted(buf, key=lambda r: r[1])
            hits += self._streaks(provider, ordered)
        return hits

    def _streaks(self, provider: str, ordered: list[tuple[str, int, bool, str]]) -> list[Hit]:
        hits, run = [], []
        for row in ordered:
            if not row[2]:
                run = []
                continue
            run.append(row)
            start = run[0][1]
            if len(run) == self.config.streak and self._fired.get(provider) != start:
                self._fired[provider] = start
                hits.append(self.hit(provider, start, row[1] + 1, row[1], failed_attempts=len(run),
                                     event_ids=[r[3] for r in run]))
        return hits

    def advance(self, watermark_ms: int) -> list[Hit]:
        keep_from = watermark_ms - 60_000  # keep a minute of settled attempts: streaks can span it
        for provider, buf in self._attempts.items():
            if buf and min(r[1] for r in buf) < keep_from:
                self._attempts[provider] = deque(r for r in buf if r[1] >= keep_from)
        return []
