"""``fleetlens reprocess``: replay stored events (hot ∪ archive) through the detector, e.g. after a rule was fixed.

Events and metric samples of the range are read hour by hour in event-time order from the store
(archived days straight from their Parquet files), run through a fresh engine with the given rules,
and the resulting alerts are written to the store only — no webhook, Alertmanager or MQ
notification. An alert whose id is already in the store (the live detector raised it, or an earlier
reprocess did) is left exactly as it is, so reprocessing never double-alerts and never touches
live alerts; new ones carry ``evidence.reprocessed_at``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import pyarrow as pa

from fleetlens.alerts.manager import AlertManager
from fleetlens.alerts.model import Alert, Change
from fleetlens.alerts.sinks import StoreSink
from fleetlens.contract.schema import EVENTS_SCHEMA, METRICS_SCHEMA
from fleetlens.detect.config import RulesConfig
from fleetlens.detect.engine import Engine
from fleetlens.query.common import Limits, TimeRange, table_source
from fleetlens.settings import Settings
from fleetlens.store.client import Store

CHUNK_MS = 3_600_000


@dataclass
class ReprocessSummary:
    """What a reprocess run read and raised."""

    events: int = 0
    hours: int = 0
    alerts_new: list[str] = field(default_factory=list)
    alerts_already_stored: list[str] = field(default_factory=list)
    archive_days: set[str] = field(default_factory=set)
    seconds: float = 0.0


class _NewOnlySink:
    """Writes an alert to the store only when its id is not there yet; remembers what it skipped."""

    def __init__(self, store: Store, summary: ReprocessSummary, stamp: str):
        self.store_sink = StoreSink(store)
        self.store = store
        self.summary = summary
        self.stamp = stamp
        self.decided: dict[str, bool] = {}

    def send(self, alert: Alert, change: Change) -> None:
        """Forward changes of alerts that are new to the store."""
        new = self.decided.get(alert.id)
        if new is None:
            found = self.store.query_scalar("SELECT count() FROM alerts WHERE id = {id:String}", {"id": alert.id})
            new = self.decided[alert.id] = not found
            (self.summary.alerts_new if new else self.summary.alerts_already_stored).append(alert.id)
        if new:
            alert.evidence = {**alert.evidence, "reprocessed_at": self.stamp}
            self.store_sink.send(alert, change)


def _columns(schema: pa.Schema) -> str:
    return ", ".join(f"`{f.name}`" for f in schema)


def _read(store: Store, limits: Limits, table: str, schema: pa.Schema, lo: int, hi: int, days: set[str]) -> pa.Table:
    rng = TimeRange(dt.datetime.fromtimestamp(lo / 1000, dt.UTC), dt.datetime.fromtimestamp(hi / 1000, dt.UTC))
    source = table_source(store, limits, table, rng)
    days.update(d.isoformat() for d in source.archive_days)
    sql = (f"SELECT {_columns(schema)} FROM {source.sql} WHERE ts >= fromUnixTimestamp64Milli({{lo:Int64}}) "
           "AND ts < fromUnixTimestamp64Milli({hi:Int64}) ORDER BY ts")
    result = store.query_arrow(sql, {"lo": lo, "hi": hi}, timeout_s=limits.timeout_s)
    return result.cast(schema) if result.num_columns else schema.empty_table()


def hours(start_ms: int, end_ms: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) chunks of at most an hour covering [start_ms, end_ms)."""
    lo = start_ms
    while lo < end_ms:
        hi = min(end_ms, lo - lo % CHUNK_MS + CHUNK_MS)
        yield lo, hi
        lo = hi


def reprocess(settings: Settings, store: Store, rules: RulesConfig, start: dt.datetime, end: dt.datetime,
              progress: Callable[[int, int, ReprocessSummary], None] | None = None) -> ReprocessSummary:
    """Run [start, end) through ``rules``; new alerts go to the store (see the module docstring)."""
    from fleetlens.archive.reader import ArchiveView

    summary = ReprocessSummary()
    started = time.monotonic()
    limits = Limits.from_settings(settings.query, archive=ArchiveView.from_settings(settings))
    limits = dataclasses.replace(limits, timeout_s=max(limits.timeout_s, settings.query_timeout_s))
    engine = Engine(rules, idle_s=float("inf"))
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    manager = AlertManager([_NewOnlySink(store, summary, stamp)], int(rules.cooldown_s * 1000))
    chunks = list(hours(int(start.timestamp() * 1000), int(end.timestamp() * 1000)))
    for i, (lo, hi) in enumerate(chunks):
        events = _read(store, limits, "events", EVENTS_SCHEMA, lo, hi, summary.archive_days)
        samples = _read(store, limits, "metrics", METRICS_SCHEMA, lo, hi, summary.archive_days)
        summary.events += events.num_rows + samples.num_rows
        manager.on_hits(engine.process_arrow(events, samples, "store"))
        manager.on_watermark(engine.watermarks.watermark())
        summary.hours += 1
        if progress:
            progress(i + 1, len(chunks), summary)
    manager.on_hits(engine.advance())
    summary.seconds = time.monotonic() - started
    return summary
