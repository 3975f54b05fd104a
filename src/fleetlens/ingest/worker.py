"""The ingest worker: read → decode → store → dead-letter → acknowledge, with both cores busy.

Three threads overlap the work, linked by bounded queues. The reader pulls deliveries from the MQ
and cuts a batch by size (``batch_rows`` events) or age (``batch_seconds``); the decoder turns a
cut into Arrow tables; when ``max_inflight_batches`` decoded batches wait for the store, the
decoder and then the reader stop (backpressure, bounded memory: the MQ keeps the rest). The
writer inserts each batch, writes its dead letters, and only then acknowledges it; a
failing store is retried with backoff for as long as it takes and nothing is acknowledged
meanwhile. A crash at any point leaves the batch unacknowledged, so it is redelivered; redelivered
batches are checked against the store by ``event_id`` so nothing is stored twice.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, TypeVar

import pyarrow as pa

from fleetlens.ingest.batch import Batch, build_batch, estimate_events
from fleetlens.ingest.stats import IngestStats
from fleetlens.logsetup import get_logger
from fleetlens.observe import metrics as prom
from fleetlens.settings import IngestSettings
from fleetlens.sources.base import Delivery, Source, nothing_left
from fleetlens.store import tables
from fleetlens.store.client import Store
from fleetlens.store.dedup import drop_stored

log = get_logger(__name__)
T = TypeVar("T")
_DONE = object()


class Stopped(Exception):
    """Raised inside a retry loop when the worker is asked to stop before the operation succeeded."""


class IngestWorker:
    """Moves events from one MQ consumer into the store (see the module docstring)."""

    def __init__(self, source: Source, store: Store, settings: IngestSettings, stats: IngestStats | None = None):
        self.source = source
        self.store = store
        self.settings = settings
        self.stats = stats or IngestStats()
        self._cuts: queue.Queue[object] = queue.Queue(maxsize=1)
        self._decoded: queue.Queue[object] = queue.Queue(maxsize=settings.max_inflight_batches)
        self._stop = threading.Event()
        self._abort = threading.Event()
        self.error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, until_idle_s: float | None = None) -> None:
        """Run until ``stop`` is set (then drain what was read), or until idle for ``until_idle_s``."""
        self._stop = stop or threading.Event()
        threads = [
            threading.Thread(target=self._guard(self._read_loop), args=(until_idle_s,), name="ingest-reader"),
            threading.Thread(target=self._guard(self._decode_loop), name="ingest-decoder"),
        ]
        for thread in threads:
            thread.start()
        try:
            self._guard(self._write_loop)()
        finally:
            self._abort.set()
            for thread in threads:
                thread.join()
        if self.error is not None:
            raise self.error

    def _guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        def run(*args: object) -> None:
            try:
                fn(*args)
            except Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to run()'s caller
                log.exception("ingest worker failed", thread=threading.current_thread().name)
                self.error = self.error or exc
                self._abort.set()
                self._stop.set()
                self._put(self._cuts, _DONE)
                self._put(self._decoded, _DONE)

        return run

    def _put(self, target: queue.Queue[object], item: object) -> None:
        while True:
            try:
                target.put(item, timeout=0.2)
                return
            except queue.Full:
                if self._abort.is_set():
                    return

    # -- reader ----------------------------------------------------------------------------------

    def _read_loop(self, until_idle_s: float | None) -> None:
        pending: list[Delivery] = []
        events = 0
        first_at = 0.0
        idle_since = time.monotonic()
        pace = _Pace(self.settings.max_events_per_s)
        while not self._stop.is_set() and not self._abort.is_set():
            pace.wait(lambda: self._stop.is_set() or self._abort.is_set())
            wait = self.settings.batch_seconds - (time.monotonic() - first_at) if pending else self.settings.batch_seconds
            want = pace.limit(max(1, self.settings.batch_rows - events))
            read_started = time.monotonic()
            deliveries = self._retry("read", lambda: self.source.read(want, max(0.01, wait)))
            now = time.monotonic()
            self.stats.add(read_seconds=now - read_started)
            if deliveries:
                if not pending:
                    first_at = now
                pending.extend(deliveries)
                read = sum(estimate_events(d) for d in deliveries)
                events += read
                pace.took(sum(len(d.payloads) for d in deliveries), read)
                idle_since = now
            if pending and (events >= self.settings.batch_rows or now - first_at >= self.settings.batch_seconds):
                self._put(self._cuts, pending)
                pending, events = [], 0
            elif not pending and until_idle_s is not None and now - idle_since >= until_idle_s:
                if nothing_left(self.source):
                    break
                idle_since = now  # the group still has work (e.g. a rebalance is pending): ask again later
        if pending and not self._abort.is_set():
            self._put(self._cuts, pending)
        self._put(self._cuts, _DONE)

    # -- decoder ---------------------------------------------------------------------------------

    def _decode_loop(self) -> None:
        while True:
            item = self._cuts.get()
            if item is _DONE:
                self._put(self._decoded, _DONE)
                return
            started = time.monotonic()
            batch = build_batch(item)  # type: ignore[arg-type]
            took = time.monotonic() - started
            self.stats.add(decode_seconds=took)
            prom.DECODE_SECONDS.observe(took)
            self._put(self._decoded, batch)

    # -- writer ----------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            item = self._decoded.get()
            if item is _DONE:
                return
            prom.INFLIGHT_BATCHES.set(self._decoded.qsize() + 1)
            self._store_batch(item)  # type: ignore[arg-type]
            prom.INFLIGHT_BATCHES.set(self._decoded.qsize())

    def _store_batch(self, batch: Batch) -> None:
        with self.source.hold(batch.deliveries) as owned:
            if len(owned) < len(batch.deliveries):
                # Partitions of this batch went to another consumer (Kafka rebalance): it re-reads them.
                log.info("dropping work of revoked partitions", deliveries=len(batch.deliveries) - len(owned))
                if not owned:
                    return
                batch = build_batch(owned)
            self._store_held_batch(batch)

    def _store_held_batch(self, batch: Batch) -> None:
        started = time.monotonic()
        events, metrics = batch.events, batch.metrics
        skipped = batch.duplicates_in_batch
        if batch.redelivered:
            events, dropped_e = self._retry("dedup events", lambda: drop_stored(self.store, tables.EVENTS, batch.events))
            metrics, dropped_m = self._retry("dedup metrics", lambda: drop_stored(self.store, tables.METRICS, batch.metrics))
            skipped += dropped_e + dropped_m
        self._insert(tables.EVENTS, events)
        self._insert(tables.METRICS, metrics)
        if batch.dead_letters:
            self._insert(tables.REJECTIONS, batch.rejections_table())
            self._retry("dead-letter", lambda: self.source.dead_letter(batch.dead_letters))
        self._retry("ack", lambda: self.source.ack(batch.deliveries))
        self.stats.add(
            messages=batch.messages,
            events_stored=events.num_rows,
            metrics_stored=metrics.num_rows,
            rejected=len(batch.dead_letters),
            duplicates_skipped=skipped,
            batches=1,
            last_insert_s=time.monotonic() - started,
            store_seconds=time.monotonic() - started,
        )
        prom.record_batch(
            messages=batch.messages,
            lines=batch.events.num_rows + batch.metrics.num_rows + len(batch.dead_letters) + batch.duplicates_in_batch,
            events_stored=events.num_rows,
            metrics_stored=metrics.num_rows,
            rejected_fields=(d.field for d in batch.dead_letters),
            duplicates_skipped=skipped,
            seconds=time.monotonic() - started,
        )
        if skipped:
            log.info("duplicates skipped", count=skipped, redelivered=batch.redelivered)

    def _insert(self, table: str, data: pa.Table) -> None:
        if data.num_rows:
            self._retry(f"insert {table}", lambda: self._timed_insert(table, data))

    def _timed_insert(self, table: str, data: pa.Table) -> None:
        started = time.monotonic()
        self.store.insert_arrow(table, data)
        prom.INSERT_SECONDS.labels(table).observe(time.monotonic() - started)

    def _retry(self, what: str, operation: Callable[[], T]) -> T:
        """Run ``operation`` until it succeeds, backing off; only a stop request ends the retries."""
        delay = 0.2
        attempts = 0
        while True:
            try:
                return operation()
            except Exception as exc:  # noqa: BLE001 - any store/MQ failure is retried, never dropped
                attempts += 1
                self.stats.add(retries=1)
                prom.RETRIES.labels(what).inc()
                log.warning("retrying after failure", operation=what, error=str(exc)[:300], retry_in_s=round(delay, 2))
                # Asked to stop: give up after a few tries; the batch stays unacknowledged and is redelivered.
                if self._abort.wait(delay) or (self._stop.is_set() and attempts >= 3):
                    raise Stopped from exc
                delay = min(delay * 2, self.settings.insert_retry_max_s)


class _Pace:
    """Holds reads to ``rate`` events per second on average (``rate`` 0: no cap).

    Reads are made small (a tenth of a second's worth) so the cap spreads them out instead of
    letting one large read through and then pausing; a pause is never longer than 0.1 s at a
    time, so a stop request is seen promptly.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._started = time.monotonic()
        self._events = 0
        self._per_message = 0.0  # events per message, as last read (0: nothing read yet)

    def limit(self, want: int) -> int:
        """How many messages to ask the source for (``want``: the batch's room, in events)."""
        if not self.rate:
            return want
        if not self._per_message:  # one message first, to learn how many events a message holds
            return 1
        return max(1, int(min(want, self.rate / 10) / self._per_message))

    def took(self, messages: int, events: int) -> None:
        """Count ``events`` in ``messages`` just read."""
        self._events += events
        if messages:
            self._per_message = max(1.0, events / messages)

    def wait(self, stopped: Callable[[], bool]) -> None:
        """Sleep until reading more keeps the average at or under the cap (or ``stopped()``)."""
        if not self.rate:
            return
        now = time.monotonic()
        due = self._started + self._events / self.rate
        if now - due > 1.0:  # idle for a while (nothing to read): do not catch up in a burst
            self._started, self._events = now, 0
            return
        while not stopped():
            left = due - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.1, left))
