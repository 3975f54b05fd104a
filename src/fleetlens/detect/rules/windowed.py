"""Count rules over sliding (hopping) event-time windows.

They count rows the watermark has made final (``windows.Pending``) and fire as soon as a count
over those crosses its threshold — the allowed lateness after the crossing event, long before the
window closes — so the first window to cross, and the alert id, are the same for every consumer.
"""

from __future__ import annotations

from abc import abstractmethod

import polars as pl

from fleetlens.detect.frame import Frame
from fleetlens.detect.hits import Hit
from fleetlens.detect.rules.base import SAMPLE_IDS, Rule
from fleetlens.detect.windows import Fired, Pending, WindowCounts


class WindowCountRule(Rule):
    """A count rule over windows of ``config.window_s``: rows wait in ``pending`` until the watermark
    makes them final, then ``_count`` adds them to ``counts`` and returns the hits."""

    def __init__(self, name, config, allowed_lateness_ms, keys: list[str]):
        super().__init__(name, config, allowed_lateness_ms)
        size = config.window_s * 1000
        self.counts = WindowCounts(keys, size)
        self.fired = Fired(size)
        self.pending = Pending()

    @property
    def horizon_ms(self) -> int:
        return self.counts.size_ms + self.allowed_lateness_ms

    @abstractmethod
    def _count(self, final: pl.DataFrame) -> list[Hit]:
        """Add rows the watermark made final to the counts; the hits of windows now over threshold."""

    def advance(self, watermark_ms: int) -> list[Hit]:
        final = self.pending.release(watermark_ms)
        hits = self._count(final) if final is not None else []
        self.counts.prune(watermark_ms - self.allowed_lateness_ms)
        self.fired.prune(watermark_ms - self.allowed_lateness_ms)
        return hits


class PaymentFailuresRule(WindowCountRule):
    """``payment_failures_same_provider``: ≥ K distinct users whose payment retries failed on one provider within T.

    A user counts when one of their purchases (``action_id``) had ≥ M attempts failing with a
    provider error code (timeouts, 5xx; a declined card is not the provider failing).
    """

    def __init__(self, name, config, allowed_lateness_ms):
        super().__init__(name, config, allowed_lateness_ms, ["provider", "user_id", "action_id"])
        self._samples: dict[str, list[str]] = {}

    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        self.pending.add(frame.events.filter(
            (pl.col("operation") == "payment_attempt") & (pl.col("outcome") == "failure")
            & pl.col("error_code").is_in(self.config.error_codes)
        ).select("ts", "provider", "user_id", "action_id", "event_id"))
        return []

    def _count(self, failed: pl.DataFrame) -> list[Hit]:
        for provider, ids in failed.group_by("provider").agg(pl.col("event_id").head(SAMPLE_IDS)).iter_rows():
            self._samples[provider] = (self._samples.get(provider, []) + ids)[-SAMPLE_IDS:]
        touched = self.counts.add(failed.select("ts", "provider", "user_id", "action_id"))
        touched_windows = touched.select("provider", "wstart").unique()
        users = (
            self.counts.state.join(touched_windows, on=["provider", "wstart"], how="semi")
            .filter(pl.col("n") >= self.config.min_failures)
            .group_by("provider", "wstart")
            .agg(pl.col("user_id").n_unique().alias("users"), pl.col("n").sum().alias("failures"),
                 pl.col("user_id").unique().sort().head(10))
            .filter(pl.col("users") >= self.config.min_users)
            .sort("wstart")
        )
        size = self.counts.size_ms
        hits = []
        trigger = int(failed["ts"].max())  # type: ignore[arg-type]
        for provider, wstart, n_users, failures, user_ids in users.iter_rows():
            if self.fired.new(provider, wstart):
                hits.append(self.hit(provider, wstart, wstart + size, trigger, users=n_users, failed_attempts=failures,
                                     user_ids=user_ids, min_users=self.config.min_users,
                                     min_failures=self.config.min_failures, event_ids=self._samples.get(provider, [])))
        return hits


class IdenticalOperationBurstRule(WindowCountRule):
    """``identical_operation_burst``: one user repeats one identical operation (operation, amount, page) ≥ N times within T."""

    def __init__(self, name, config, allowed_lateness_ms):
        super().__init__(name, config, allowed_lateness_ms, ["user_id", "what"])

    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        self.pending.add(frame.events.filter(pl.col("operation").is_in(self.config.operations)).select(
            "ts",
            "user_id",
            # identical = same operation, amount and page; without an amount, the same order
            pl.concat_str(
                pl.col("operation"), pl.coalesce(pl.col("amount").cast(pl.String), pl.col("order_id")), pl.col("page"),
                separator="|",
            ).alias("what"),
            "event_id",
        ))
        return []

    def _count(self, ops: pl.DataFrame) -> list[Hit]:
        ops = ops.select("ts", "user_id", "what")
        touched = self.counts.add(ops).filter(pl.col("n") >= self.config.min_repeats).sort("wstart")
        size = self.counts.size_ms
        hits = []
        for user, what, wstart, n in touched.iter_rows():
            if self.fired.new(user, wstart):
                operation, same, page = what.split("|", 2)
                hits.append(self.hit(user, wstart, wstart + size, int(ops["ts"].max()), operation=operation,  # type: ignore[arg-type]
                                     identical=same, page=page, repeats=int(n), min_repeats=self.config.min_repeats))
        return hits
