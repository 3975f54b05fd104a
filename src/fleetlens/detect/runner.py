"""The detector as a role: its own consumer group, micro-batches through the engine, alerts out.

On start it loads the alerts the store already holds (so it continues them instead of raising
them again), re-reads what its group consumed in the last window-length to rebuild the rules'
state, then consumes: a micro-batch is cut by size or age, decoded per partition, run through the
rules, the resulting alert changes sent, and only then acknowledged. Alert ids are deterministic,
so the re-read after a crash never raises an alert twice.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import orjson
import pyarrow as pa

from fleetlens.alerts.manager import AlertManager
from fleetlens.alerts.model import Alert, Change
from fleetlens.alerts.sinks import AlertmanagerSink, AlertSink, MQSink, SinkStopped, StoreSink, WebhookSink
from fleetlens.contract.decode import decode_payloads
from fleetlens.detect.config import RulesConfig, load_rules
from fleetlens.detect.engine import Engine
from fleetlens.detect.hits import Hit
from fleetlens.logsetup import get_logger
from fleetlens.observe import metrics
from fleetlens.settings import Settings
from fleetlens.sources.base import Delivery, Source, nothing_left
from fleetlens.sources.factory import open_sink, open_source
from fleetlens.sources.lag_probe import GroupLagProbe
from fleetlens.sources.replay import Replay, open_replay
from fleetlens.store.client import Store

log = get_logger(__name__)
_DONE = object()

LOAD_ALERTS_SQL = """
SELECT id, rule, key, severity, toUnixTimestamp64Milli(ts_start) AS ts_start, toUnixTimestamp64Milli(ts_end) AS ts_end,
       status, evidence
FROM alerts FINAL
WHERE status = 'firing' OR ts_end >= (SELECT max(ts_end) FROM alerts) - toIntervalMillisecond({keep_ms:Int64})
"""


@dataclass
class DetectorStats:
    """Counters of a running detector (read by ``fleetlens up``'s status line)."""

    messages: int = 0
    events: int = 0
    rejected_lines: int = 0
    replayed_messages: int = 0
    skipped_reread: int = 0  # Kafka messages read again after a lost partition came back, already evaluated
    batches: int = 0
    alerts_raised: int = 0
    alerts_resolved: int = 0
    late_events: int = 0
    last_batch_s: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds from a batch's first read to its alerts sent


def build_sinks(settings: Settings, store: Store | None,
                stopping: Callable[[], bool] | None = None) -> list[AlertSink]:
    """The configured alert sinks; the store sink last (it records what was sent).

    ``stopping``: the detector's stop flag; with it the store sink waits out a store outage.
    """
    sinks: list[AlertSink] = [WebhookSink(url) for url in settings.detect.webhook_urls]
    if settings.detect.alertmanager_url:
        sinks.append(AlertmanagerSink(settings.detect.alertmanager_url))
    if settings.detect.alerts_stream:
        sinks.append(MQSink(open_sink(settings), settings.detect.alerts_stream))
    if store is not None:
        sinks.append(StoreSink(store, stopping))
    return sinks


def load_alerts(store: Store, keep_ms: int) -> list[Alert]:
    """Alerts still firing, and those that ended within ``keep_ms`` of the newest one."""
    rows = store.query_arrow(LOAD_ALERTS_SQL, {"keep_ms": keep_ms}).to_pylist()
    return [
        Alert(r["id"], r["rule"], r["key"], r["severity"], int(r["ts_start"]), int(r["ts_end"]), r["status"],
              orjson.loads(r["evidence"] or "{}"))
        for r in rows
    ]


class Detector:
    """One detector consumer (see the module docstring)."""

    def __init__(self, settings: Settings, store: Store | None, rules: RulesConfig | None = None,
                 sinks: list[AlertSink] | None = None,
                 on_change: Callable[[Alert, Change, float], None] | None = None):
        self.settings = settings
        self.store = store
        self.rules = rules or load_rules(settings.detect.rules_file)
        self.engine = Engine(self.rules, idle_s=settings.detect.idle_s)
        self.stats = DetectorStats()
        self._stop = threading.Event()  # replaced by run()'s; the store sink polls it while the store is away
        self.manager = AlertManager(sinks if sinks is not None else build_sinks(settings, store, lambda: self._stop.is_set()),
                                    int(self.rules.cooldown_s * 1000), on_change=self._changed(on_change))
        self.source: Source | None = None
        self.error: BaseException | None = None
        self._evaluated: dict[tuple[str, int], int] = {}  # per Kafka partition: the newest offset evaluated
        self._lag_probe = GroupLagProbe(settings, self.rules.ingest_lag.group) if self.rules.ingest_lag.enabled else None
        self._lag_above_since: float | None = None
        self._reader_error: BaseException | None = None
        self._next_lag_check = 0.0

    def _changed(self, outer):
        def on_change(alert: Alert, change: Change, at: float) -> None:
            if change == "firing":
                self.stats.alerts_raised += 1
                metrics.ALERTS_FIRED.labels(alert.rule, alert.severity).inc()
            elif change == "resolved":
                self.stats.alerts_resolved += 1
            if outer:
                outer(alert, change, at)

        return on_change

    # -- lifecycle -------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, until_idle_s: float | None = None) -> DetectorStats:
        """Consume until ``stop`` is set (or idle for ``until_idle_s``); returns the counters."""
        stop = stop or threading.Event()
        self._stop = stop
        try:
            self._run(stop, until_idle_s)
        except SinkStopped:
            # Stopped while waiting for the store: that micro-batch is not acknowledged, so it is
            # read again (and its alert, whose id is deterministic, stored) at the next start.
            log.warning("detector stopped while the store was refusing alerts; the unacknowledged batch is re-read on start")
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            if self.source is not None:
                self.source.close()
            if self._lag_probe is not None:
                self._lag_probe.close()
        return self.stats

    def _run(self, stop: threading.Event, until_idle_s: float | None) -> None:
        d = self.settings.detect
        if self.store is not None:
            alerts = self._retry("load alerts", lambda: load_alerts(
                self.store, self.engine.horizon_ms + int(self.rules.cooldown_s * 1000)), stop)
            if alerts is None:
                return
            self.manager.load(alerts)
        replay = open_replay(self.settings, d.group, min(self.engine.horizon_ms, d.replay_max_s * 1000) if d.replay else 0)
        self.engine.watermarks.expect(replay.partitions())
        for delivery in replay.deliveries():
            self.stats.replayed_messages += len(delivery)
            self._process([delivery])
        if self.stats.replayed_messages:
            log.info("detector state rebuilt from the stream", messages=self.stats.replayed_messages,
                     alerts_open=len(self.manager.open))
        self.source = open_source(self.settings, d.group, d.consumer)
        # A reader thread reads and decodes the next micro-batch while this one runs the rules
        # (Arrow decoding and Polars release the GIL, so both cores work).
        decoded: queue.Queue[object] = queue.Queue(maxsize=2)
        halt = threading.Event()
        reader = threading.Thread(target=self._read_loop, args=(stop, halt, decoded, replay, until_idle_s),
                                  name="detect-reader", daemon=True)
        reader.start()
        try:
            while True:
                try:
                    item = decoded.get(timeout=0.2)
                except queue.Empty:
                    self._tick()
                    self._check_ingest_lag()
                    continue
                if item is _DONE:
                    break
                batch, tables, started = item  # type: ignore[misc]
                self.engine.watermarks.expect(self._partitions())
                self._evaluate(tables)
                self._retry("ack", lambda: self.source.ack(batch), stop)
                self.stats.last_batch_s = time.monotonic() - started
                self.stats.latencies = (self.stats.latencies + [self.stats.last_batch_s])[-1000:]
                self._check_ingest_lag()
        finally:
            halt.set()
            reader.join()
        if self._reader_error is not None:
            raise self._reader_error

    def _read_loop(self, stop: threading.Event, halt: threading.Event, out: "queue.Queue[object]", replay: Replay,
                   until_idle_s: float | None) -> None:
        assert self.source is not None
        idle_since = time.monotonic()
        try:
            while not stop.is_set() and not halt.is_set():
                batch, started = self._read_batch(stop)
                if not batch:
                    if until_idle_s is not None and time.monotonic() - idle_since >= until_idle_s:
                        if nothing_left(self.source):
                            break
                        idle_since = time.monotonic()  # the group still has work: ask again later
                    continue
                idle_since = time.monotonic()
                kept = []
                for delivery in batch:
                    delivery, covered = replay.uncovered(delivery)
                    if covered:  # handled by the replay already
                        self.source.ack([Delivery(delivery.stream, delivery.partition, covered, [b""] * len(covered))])
                    delivery = self._not_evaluated(delivery)
                    if len(delivery):
                        kept.append(delivery)
                item = (batch, self._decode(kept), started)
                while not halt.is_set():
                    try:
                        out.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - raised again by _run in the main thread
            self._reader_error = exc
        finally:
            while True:
                try:
                    out.put(_DONE, timeout=0.2)
                    return
                except queue.Full:
                    if halt.is_set():
                        return

    def _not_evaluated(self, delivery: Delivery) -> Delivery:
        """``delivery`` without the Kafka offsets this detector has evaluated already (acknowledged with the batch).

        A Kafka partition lost while the broker was away (or whose commit failed) comes back from the
        group's last commit: counting its messages a second time would inflate the windows (a burst of
        identical operations out of one). Redis ids are left alone: a claim hands over another
        consumer's older, never evaluated entries.
        """
        if not delivery.positions or not isinstance(delivery.positions[0], int):
            return delivery
        key = (delivery.stream, delivery.partition)
        newest = self._evaluated.get(key, -1)
        self._evaluated[key] = max(newest, int(delivery.positions[-1]))
        if delivery.positions[0] > newest:
            return delivery
        keep = [i for i, p in enumerate(delivery.positions) if p > newest]
        self.stats.skipped_reread += len(delivery.positions) - len(keep)
        return Delivery(delivery.stream, delivery.partition, [delivery.positions[i] for i in keep],
                        [delivery.payloads[i] for i in keep], delivery.redelivered)

    def _retry(self, what: str, operation, stop: threading.Event):
        """Run ``operation`` until it succeeds (the MQ or store restarting, a broker away), backing off; None once stopped."""
        delay = 0.2
        while True:
            try:
                return operation()
            except Exception as exc:  # noqa: BLE001 - the MQ coming back is the normal end of this
                log.warning("detector retrying after a failure", operation=what, error=str(exc)[:300],
                            retry_in_s=round(delay, 2))
                if stop.wait(delay):
                    return None
                delay = min(delay * 2, 5.0)

    def _partitions(self) -> list[str]:
        try:
            return self.source.partitions() if self.source is not None else []
        except Exception:  # noqa: BLE001 - an unknown assignment only means no partition is waited for
            return []

    def _read_batch(self, stop: threading.Event) -> tuple[list[Delivery], float]:
        d = self.settings.detect
        assert self.source is not None
        batch: list[Delivery] = []
        messages = 0
        started = time.monotonic()
        deadline = started + d.batch_ms / 1000
        while not stop.is_set():
            wait = deadline - time.monotonic() if batch else 0.2
            got = self._retry("read", lambda: self.source.read(max(1, d.batch_events - messages), max(0.01, wait)), stop)
            if got is None:  # asked to stop while the MQ was away
                break
            if got:
                if not batch:
                    started = time.monotonic()
                    deadline = started + d.batch_ms / 1000
                batch += got
                messages += sum(len(x) for x in got)
            if not batch or messages >= d.batch_events or time.monotonic() >= deadline:
                break
        return batch, started

    # -- processing ------------------------------------------------------------------------------

    def _process(self, deliveries: list[Delivery]) -> None:
        self._evaluate(self._decode(deliveries))

    def _decode(self, deliveries: list[Delivery]) -> list[tuple[str, pa.Table, pa.Table]]:
        """Decode each delivery (one partition each): (partition, events, metrics)."""
        tables = []
        for delivery in deliveries:
            decoded = decode_payloads(delivery.payloads)
            self.stats.messages += len(delivery)
            self.stats.events += decoded.events.num_rows + decoded.metrics.num_rows
            self.stats.rejected_lines += len(decoded.rejections)
            tables.append((f"{delivery.stream}/{delivery.partition}", decoded.events, decoded.metrics))
        return tables

    def _evaluate(self, tables: list[tuple[str, pa.Table, pa.Table]]) -> None:
        hits: list[Hit] = []
        for partition, events, samples in tables:
            hits += self.engine.process_arrow(events, samples, partition)
        self.stats.batches += 1
        self.stats.late_events = self.engine.stats.late
        hits.sort(key=lambda h: h.trigger_ms)
        self.manager.on_hits(hits)
        self.manager.on_watermark(self.engine.watermarks.watermark())
        now_ms = time.time() * 1000
        for partition, newest in self.engine.watermarks.newest_by_partition().items():
            metrics.WATERMARK_DELAY.labels(partition).set(max(0.0, (now_ms - newest) / 1000 + self.rules.allowed_lateness_s))

    def process_tables(self, events: pa.Table, metrics: pa.Table, partition: str = "") -> None:
        """Run already-decoded tables through the rules and the alert manager (tests, reprocessing)."""
        hits = self.engine.process_arrow(events, metrics, partition)
        self.manager.on_hits(hits)
        self.manager.on_watermark(self.engine.watermarks.watermark())

    def _tick(self) -> None:
        hits = self.engine.advance()
        if hits:
            self.manager.on_hits(hits)
        self.manager.on_watermark(self.engine.watermarks.watermark())

    def _check_ingest_lag(self) -> None:
        if self._lag_probe is None or time.monotonic() < self._next_lag_check:
            return
        rule = self.rules.ingest_lag
        self._next_lag_check = time.monotonic() + self.settings.detect.lag_check_s
        try:
            lag = self._lag_probe.lag()
        except Exception as exc:  # noqa: BLE001 - the probe failing must not stop detection
            log.warning("ingest lag probe failed", error=str(exc)[:200])
            return
        now = time.monotonic()
        if lag is None or lag <= rule.max_messages:
            self._lag_above_since = None
            return
        if self._lag_above_since is None:
            self._lag_above_since = now
        if now - self._lag_above_since >= rule.for_s:
            now_ms = int(time.time() * 1000)
            window = now_ms - now_ms % 60_000
            self.manager.on_hits([Hit("ingest_lag", rule.group, window, window + 60_000, rule.severity,
                                      {"lag_messages": lag, "max_messages": rule.max_messages,
                                       "above_for_s": round(now - self._lag_above_since, 1)}, now_ms)])
