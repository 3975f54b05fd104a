"""Instant rules: decided on single events as they arrive."""

from __future__ import annotations

import bisect

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

    Attempts are buffered per provider and streaks are counted over those the watermark has made
    final (older than it), in (ts, event_id) order: every consumer of the stream, whatever order
    its partitions arrive in, sees the same streaks with the same first failure, hence the same alert
    id. The price is the allowed lateness: the alert comes that long after the N-th failure.
    """

    def __init__(self, name, config, allowed_lateness_ms):
        super().__init__(name, config, allowed_lateness_ms)
        self._attempts: dict[str, list[tuple[int, str, bool]]] = {}  # provider -> (ts, event_id, failed)
        self._fired: set[tuple[str, int]] = set()  # (provider, first failure ts)

    @property
    def horizon_ms(self) -> int:
        return self.allowed_lateness_ms + 60_000

    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        rows = frame.events.filter(pl.col("operation") == "payment_attempt").select(
            "provider", "ts", "event_id",
            (pl.col("outcome") == "failure") & pl.col("error_code").is_in(self.config.error_codes),
        )
        for (provider,), group in rows.group_by("provider"):
            self._attempts.setdefault(provider, []).extend(group.select(pl.exclude("provider")).iter_rows())
        return []

    def advance(self, watermark_ms: int) -> list[Hit]:
        hits: list[Hit] = []
        keep_from = watermark_ms - 60_000
        for provider, rows in self._attempts.items():
            rows.sort()
            final = bisect.bisect_left(rows, (watermark_ms,))
            run: list[tuple[int, str, bool]] = []
            boundary = 0  # index of the last success older than keep_from: everything before it is settled
            for i in range(final):
                row = rows[i]
                if not row[2]:
                    run = []
                    if row[0] < keep_from:
                        boundary = i
                    continue
                run.append(row)
                if len(run) == self.config.streak and (provider, run[0][0]) not in self._fired:
                    self._fired.add((provider, run[0][0]))
                    hits.append(self.hit(provider, run[0][0], row[0] + 1, row[0], failed_attempts=len(run),
                                         event_ids=[r[1] for r in run]))
            if boundary:
                del rows[:boundary]
        self._fired = {f for f in self._fired if f[1] >= keep_from - 3_600_000}
        return hits
