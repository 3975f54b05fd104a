"""Every Prometheus metric fleetlens exports, defined once (official ``prometheus-client``).

Roles update them per batch, per request or per measurement, never per event. They live in the
process-wide default registry, so ``/metrics`` of the API and of the small metrics server of the
other roles (:mod:`fleetlens.observe.server`) show whatever roles run in the process. The Grafana
dashboard for fleetlens itself (:mod:`fleetlens.observe.dashboard`) is built from these names.

Who updates what: ingest (``fleetlens.ingest.worker``) the ``ingest_*``, ``events_*`` and
``store_insert_*`` metrics; the lag watcher (:mod:`fleetlens.observe.health`) ``consumer_lag``;
the API the ``api_*`` metrics; the detector ``detector_*`` and ``alerts_fired``; the archiver ``archive_*``.
"""

from __future__ import annotations

import threading
from collections import Counter as _Tally
from typing import Iterable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info, disable_created_metrics, generate_latest

disable_created_metrics()  # the _created series double the output and nothing here reads them

NAMESPACE = "fleetlens"

# -- ingest ----------------------------------------------------------------------------------------

MESSAGES_CONSUMED = Counter(
    "messages_consumed", "MQ messages read, stored or dead-lettered and acknowledged.", namespace=NAMESPACE
)
EVENTS_CONSUMED = Counter(
    "events_consumed", "Lines (events) of acknowledged batches: stored + rejected + duplicates skipped.", namespace=NAMESPACE
)
EVENTS_STORED = Counter(
    "events_stored", "Rows inserted into the hot store, by table (events, metrics).", ["table"], namespace=NAMESPACE
)
EVENTS_REJECTED = Counter(
    "events_rejected", "Lines sent to the dead-letter stream, by the field the reason is about (payload: not JSON).",
    ["reason"], namespace=NAMESPACE,
)
DUPLICATES_SKIPPED = Counter(
    "duplicates_skipped", "Events not stored again because the store already held their event_id.", namespace=NAMESPACE
)
BATCHES = Counter("ingest_batches", "Batches stored and acknowledged.", namespace=NAMESPACE)
BATCH_EVENTS = Histogram(
    "ingest_batch_events", "Lines per stored batch.", namespace=NAMESPACE,
    buckets=(1, 10, 100, 500, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000),
)
BATCH_SECONDS = Histogram(
    "ingest_batch_seconds", "Time from a decoded batch to its acknowledgement (dedup, inserts, dead letters, ack).",
    namespace=NAMESPACE, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DECODE_SECONDS = Histogram(
    "ingest_decode_seconds", "Time to decode and validate one batch.", namespace=NAMESPACE,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INSERT_SECONDS = Histogram(
    "store_insert_seconds", "Latency of one successful insert into the store, by table.", ["table"], namespace=NAMESPACE,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES = Counter(
    "ingest_retries", "Failed MQ or store operations retried (with backoff), by operation.", ["operation"], namespace=NAMESPACE
)
INFLIGHT_BATCHES = Gauge(
    "ingest_inflight_batches", "Decoded batches waiting for the store (the reader stops when this is full).",
    namespace=NAMESPACE,
)
CONSUMER_LAG = Gauge(
    "consumer_lag_messages",
    "Messages of a stream (Redis) or topic/partition (Kafka) not yet acknowledged by a consumer group: "
    "state=undelivered (not handed out yet) or pending (handed out, not acknowledged).",
    ["group", "stream", "state"], namespace=NAMESPACE,
)
LAG_MEASURED = Gauge(
    "consumer_lag_measured_timestamp_seconds", "When the consumer lag of a group was last measured (unix time).",
    ["group"], namespace=NAMESPACE,
)

# -- detector and alerts (updated by fleetlens.detect) ----------------------------------------------

WATERMARK_DELAY = Gauge(
    "detector_watermark_delay_seconds", "Wall clock minus the detector's event-time watermark, per stream or partition.",
    ["stream"], namespace=NAMESPACE,
)
ALERTS_FIRED = Counter(
    "alerts_fired", "Alerts raised by the detector, by rule and severity.", ["rule", "severity"], namespace=NAMESPACE
)
ALERT_SINK_RETRIES = Counter(
    "alert_sink_retries", "Failed deliveries of an alert change retried (with backoff), by sink.", ["sink"],
    namespace=NAMESPACE,
)

# -- archive (updated by fleetlens.archive) ---------------------------------------------------------

ARCHIVE_BYTES = Counter(
    "archive_bytes", "Bytes of Parquet written to the archive, by table.", ["table"], namespace=NAMESPACE
)
ARCHIVE_LAG = Gauge(
    "archive_lag_seconds", "Age of the oldest hot data past the archive horizon that is not archived yet, by table.",
    ["table"], namespace=NAMESPACE,
)

# -- query API -------------------------------------------------------------------------------------

QUERY_SECONDS = Histogram(
    "api_request_seconds", "Latency of API requests by query family (the route) and status class.",
    ["family", "status"], namespace=NAMESPACE,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AUTH_FAILURES = Counter(
    "api_auth_failures", "Requests refused by access control, by reason.", ["reason"], namespace=NAMESPACE
)

BUILD = Info("build", "fleetlens version.", namespace=NAMESPACE)

# Reason labels come from the decoder's field names; a bound keeps a hostile stream from
# inventing unbounded label values.
_MAX_REASONS = 64
_reasons: set[str] = set()
_reasons_lock = threading.Lock()


def _reason_label(field: str) -> str:
    with _reasons_lock:
        if field in _reasons:
            return field
        if len(_reasons) < _MAX_REASONS:
            _reasons.add(field)
            return field
    return "other"


def record_batch(*, messages: int, lines: int, events_stored: int, metrics_stored: int,
                 rejected_fields: Iterable[str], duplicates_skipped: int, seconds: float) -> None:
    """One acknowledged ingest batch (called once per batch)."""
    MESSAGES_CONSUMED.inc(messages)
    EVENTS_CONSUMED.inc(lines)
    if events_stored:
        EVENTS_STORED.labels("events").inc(events_stored)
    if metrics_stored:
        EVENTS_STORED.labels("metrics").inc(metrics_stored)
    for field, count in _Tally(rejected_fields).items():
        EVENTS_REJECTED.labels(_reason_label(field)).inc(count)
    if duplicates_skipped:
        DUPLICATES_SKIPPED.inc(duplicates_skipped)
    BATCHES.inc()
    BATCH_EVENTS.observe(lines)
    BATCH_SECONDS.observe(seconds)


def record_lag(group: str, undelivered: dict[str, int], pending: dict[str, int], measured_at: float) -> None:
    """A consumer-lag measurement of ``group`` (per stream or topic/partition)."""
    for stream, value in undelivered.items():
        CONSUMER_LAG.labels(group, stream, "undelivered").set(max(0, value))
    for stream, value in pending.items():
        CONSUMER_LAG.labels(group, stream, "pending").set(value)
    LAG_MEASURED.labels(group).set(measured_at)


def exposition() -> bytes:
    """The Prometheus text format of every metric of this process."""
    return generate_latest(REGISTRY)


def _set_build_info() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        BUILD.info({"version": version("fleetlens")})
    except PackageNotFoundError:
        BUILD.info({"version": "unknown"})


_set_build_info()
