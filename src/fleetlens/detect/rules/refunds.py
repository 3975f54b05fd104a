"""``buy_then_refund`` and ``refund_repeat_offender``: a user buys and refunds the same order, again and again."""

from __future__ import annotations

import polars as pl

from fleetlens.detect.frame import Frame
from fleetlens.detect.hits import Hit
from fleetlens.detect.rules.base import Rule
from fleetlens.detect.windows import Fired, Pending, WindowCounts


class RefundCyclesRule(Rule):
    """Counts buy→refund cycles (a successful buy, then a refund of the same order by the same user) per user.

    Each order counts once however often its events are delivered, so re-reads never inflate it.
    Buys and refunds are taken in event-time order once final (``windows.Pending``), so a refund
    read before its buy (another partition) still pairs, and every consumer counts the same.
    """

    def __init__(self, name, config, allowed_lateness_ms):
        super().__init__(name, config, allowed_lateness_ms)
        size = config.window_s * 1000
        self.buys = pl.DataFrame(schema={"order_id": pl.String, "user_id": pl.String, "buy_ts": pl.Int64})
        self.paired: set[str] = set()
        self.cycles = WindowCounts(["user_id"], size)
        self.fired = Fired(size)
        self.pair_ms = config.pair_within_s * 1000
        self.pending = Pending()

    @property
    def horizon_ms(self) -> int:
        return self.pair_ms + self.cycles.size_ms

    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        self.pending.add(frame.events.filter(pl.col("operation").is_in(["buy", "refund"]) & (pl.col("order_id") != ""))
                         .select("ts", "event_id", "operation", "outcome", "order_id", "user_id"))
        return []

    def _pair(self, ev: pl.DataFrame) -> list[Hit]:
        buys = ev.filter((pl.col("operation") == "buy") & (pl.col("outcome") == "success"))
        if buys.height:
            self.buys = pl.concat([self.buys, buys.select("order_id", "user_id", pl.col("ts").alias("buy_ts"))]).unique(
                "order_id", keep="first"
            )
        refunds = ev.filter((pl.col("operation") == "refund") & ~pl.col("order_id").is_in(list(self.paired)))
        if refunds.height == 0:
            return []
        pairs = (
            refunds.select("order_id", "user_id", "ts")
            .unique("order_id", keep="first")
            .join(self.buys, on=["order_id", "user_id"])
            .filter((pl.col("ts") >= pl.col("buy_ts")) & (pl.col("ts") - pl.col("buy_ts") <= self.pair_ms))
        )
        if pairs.height == 0:
            return []
        self.paired.update(pairs["order_id"].to_list())
        touched = self.cycles.add(pairs.select("ts", "user_id")).filter(pl.col("n") >= self.config.min_cycles).sort("wstart")
        size = self.cycles.size_ms
        hits = []
        for user, wstart, n in touched.iter_rows():
            if self.fired.new(user, wstart):
                orders = pairs.filter(pl.col("user_id") == user)["order_id"].to_list()
                hits.append(self.hit(user, wstart, wstart + size, int(pairs["ts"].max()), cycles=int(n),  # type: ignore[arg-type]
                                     min_cycles=self.config.min_cycles, order_ids=orders[:10]))
        return hits

    def advance(self, watermark_ms: int) -> list[Hit]:
        final = self.pending.release(watermark_ms)
        hits = self._pair(final) if final is not None else []
        self.cycles.prune(watermark_ms - self.allowed_lateness_ms)
        self.fired.prune(watermark_ms - self.allowed_lateness_ms)
        if self.buys.height:
            old = self.buys.filter(pl.col("buy_ts") + self.pair_ms <= watermark_ms)
            if old.height:
                self.buys = self.buys.filter(pl.col("buy_ts") + self.pair_ms > watermark_ms)
                self.paired.difference_update(old["order_id"].to_list())
        return hits
