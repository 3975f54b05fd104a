"""Turning the MQ deliveries of one batch into what the store receives.

One decode call per batch (not per message: joined buffers decode ~10× faster), rejected lines
mapped back to their source position, and events repeated inside the batch dropped.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from itertools import accumulate

import pyarrow as pa
import pyarrow.compute as pc

from fleetlens.contract.decode import Decoded, decode_payloads
from fleetlens.contract.schema import REJECTS_SCHEMA
from fleetlens.sources.base import DeadLetter, Delivery


@dataclass
class Batch:
    """Decoded, in-batch-deduplicated events of some deliveries, waiting to be stored and acknowledged."""

    deliveries: list[Delivery]
    events: pa.Table
    metrics: pa.Table
    dead_letters: list[DeadLetter]
    messages: int
    duplicates_in_batch: int
    redelivered: bool
    read_at: float = field(default_factory=time.monotonic)

    def rejections_table(self) -> pa.Table:
        """The dead letters as rows of the store's rejections table."""
        now = pa.scalar(int(time.time() * 1000), pa.timestamp("ms", tz="UTC"))
        letters = self.dead_letters
        return pa.table(
            {
                "received_at": pa.array([now] * len(letters), REJECTS_SCHEMA.field("received_at").type),
                "stream": [d.stream for d in letters],
                "partition": pa.array([d.partition for d in letters], pa.int32()),
                "position": [d.position for d in letters],
                "line": pa.array([d.line for d in letters], pa.int32()),
                "event_id": [d.event_id for d in letters],
                "field": [d.field for d in letters],
                "reason": [d.reason for d in letters],
                "raw": pa.array([d.raw for d in letters], pa.binary()),
            },
            schema=REJECTS_SCHEMA,
        )


def estimate_events(delivery: Delivery) -> int:
    """Events in a delivery, counted as lines (cheap; blank lines make it an overestimate).

    Counted payload by payload: joining them first copied the whole delivery (megabytes) while holding the
    GIL, which an API request in the same process then waited for (a third of the GIL's time under ingest).
    """
    return sum(payload.count(b"\n") for payload in delivery.payloads) + len(delivery.payloads)


def drop_repeated_ids(table: pa.Table) -> tuple[pa.Table, int]:
    """Keep the first row of each ``event_id``; returns the table and how many rows were dropped."""
    if table.num_rows < 2 or pc.count_distinct(table["event_id"]).as_py() == table.num_rows:
        return table, 0
    import polars as pl

    unique = pl.from_arrow(table).unique(subset="event_id", keep="first", maintain_order=True).to_arrow()
    return unique.cast(table.schema), table.num_rows - unique.num_rows


def build_batch(deliveries: list[Delivery]) -> Batch:
    """Decode every payload of the deliveries at once and attach source positions to rejections."""
    payloads = [payload for delivery in deliveries for payload in delivery.payloads]
    decoded: Decoded = decode_payloads(payloads)
    letters = [letter for delivery in deliveries for letter in delivery.malformed]
    if decoded.rejections:
        ends = list(accumulate(len(d) for d in deliveries))
        for rejection in decoded.rejections:
            index = bisect.bisect_right(ends, rejection.message)
            delivery = deliveries[index]
            offset = rejection.message - (ends[index - 1] if index else 0)
            letters.append(
                DeadLetter(
                    stream=delivery.stream,
                    partition=delivery.partition,
                    position=delivery.position_text(offset),
                    line=rejection.line,
                    event_id=rejection.event_id,
                    field=rejection.field,
                    reason=rejection.reason,
                    raw=rejection.raw,
                )
            )
    events, dup_events = drop_repeated_ids(decoded.events)
    metrics, dup_metrics = drop_repeated_ids(decoded.metrics)
    return Batch(
        deliveries=deliveries,
        events=events,
        metrics=metrics,
        dead_letters=letters,
        messages=len(payloads),
        duplicates_in_batch=dup_events + dup_metrics,
        redelivered=any(d.redelivered for d in deliveries),
    )
