"""Where alerts go: the store's alerts table, a JSON webhook, an Alertmanager, an MQ stream/topic."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Protocol

import orjson
import pyarrow as pa

from fleetlens.logsetup import get_logger
from fleetlens.observe import metrics

if TYPE_CHECKING:
    from fleetlens.alerts.model import Alert, Change
    from fleetlens.sources.base import Sink
    from fleetlens.store.client import Store

log = get_logger(__name__)

TS = pa.timestamp("ms", tz="UTC")
ALERT_ROW_SCHEMA = pa.schema([
    ("id", pa.string()), ("rule", pa.string()), ("key", pa.string()), ("severity", pa.string()),
    ("ts_start", TS), ("ts_end", TS), ("status", pa.string()), ("evidence", pa.string()), ("updated_at", TS),
])


class AlertSink(Protocol):
    """Receives every alert change, in order."""

    def send(self, alert: "Alert", change: "Change") -> None:
        """Deliver one change (``firing``, ``update`` or ``resolved``)."""
        ...


class SinkStopped(Exception):
    """A sink gave up waiting for its destination because its owner is stopping (the change was not delivered)."""


class StoreSink:
    """Writes the alert's current state as a row of the alerts table (latest ``updated_at`` wins).

    With ``stopping`` (the detector's), a failing store is retried with backoff for as long as it
    takes: the detector holds its acknowledgements meanwhile (backpressure), so nothing it
    acknowledged lacks its alert, and it carries on by itself once the store is back. ``stopping()``
    turning true ends the wait with ``SinkStopped``. Without it, a few attempts, then the error.
    """

    def __init__(self, store: "Store", stopping: Callable[[], bool] | None = None, max_backoff_s: float = 5.0):
        self.store = store
        self.stopping = stopping
        self.max_backoff_s = max_backoff_s
        self._last_ms = 0
        self._lock = threading.Lock()

    def send(self, alert: "Alert", change: "Change") -> None:
        """Insert the alert's row (see the class docstring for how failures are retried)."""
        with self._lock:
            now = max(int(time.time() * 1000), self._last_ms + 1)  # strictly increasing versions
            self._last_ms = now
        row = pa.table(
            {"id": [alert.id], "rule": [alert.rule], "key": [alert.key], "severity": [alert.severity],
             "ts_start": [alert.ts_start], "ts_end": [alert.ts_end], "status": [alert.status],
             "evidence": [orjson.dumps(alert.evidence).decode()], "updated_at": [now]},
            schema=ALERT_ROW_SCHEMA,
        )
        _retry(lambda: self.store.insert_arrow("alerts", row), "store alert", attempts=None if self.stopping else 5,
               stopping=self.stopping, max_delay_s=self.max_backoff_s)


class WebhookSink:
    """POSTs ``{"change": ..., "alert": {...}}`` as JSON on firing and resolved (updates are not sent)."""

    def __init__(self, url: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None):
        import httpx

        self.url = url
        self.client = httpx.Client(timeout=timeout_s, headers=headers or {})

    def send(self, alert: "Alert", change: "Change") -> None:
        """One POST; retried with backoff for a short while, then logged and dropped (the store keeps the alert)."""
        if change == "update":
            return
        body = orjson.dumps({"change": change, "alert": alert.to_json()})
        _retry(lambda: self.client.post(self.url, content=body, headers={"content-type": "application/json"}).raise_for_status(),
               "webhook", raise_at_end=False)


class AlertmanagerSink:
    """Posts to an Alertmanager's ``/api/v2/alerts`` (labels alertname/key/severity; endsAt when resolved)."""

    def __init__(self, url: str, timeout_s: float = 5.0, generator_url: str = ""):
        import httpx

        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.generator_url = generator_url
        self.client = httpx.Client(timeout=timeout_s)

    def payload(self, alert: "Alert", change: "Change") -> list[dict[str, Any]]:
        """The Alertmanager v2 body for one alert."""
        item: dict[str, Any] = {
            "labels": {"alertname": alert.rule, "key": alert.key, "severity": alert.severity, "alert_id": alert.id,
                       "source": "fleetlens"},
            "annotations": {"summary": f"{alert.rule} on {alert.key}",
                            "evidence": orjson.dumps(alert.evidence).decode()[:4000]},
            "startsAt": _rfc3339(alert.ts_start),
        }
        if change == "resolved":
            item["endsAt"] = _rfc3339(max(alert.ts_end, alert.ts_start) + 1)
        if self.generator_url:
            item["generatorURL"] = self.generator_url
        return [item]

    def send(self, alert: "Alert", change: "Change") -> None:
        """POST firing and resolved changes (Alertmanager groups and deduplicates by labels itself)."""
        if change == "update":
            return
        body = orjson.dumps(self.payload(alert, change))
        _retry(lambda: self.client.post(self.url, content=body, headers={"content-type": "application/json"}).raise_for_status(),
               "alertmanager", raise_at_end=False)


class MQSink:
    """Writes each firing/resolved change as one JSON message to a stream (Redis) or topic (Kafka), keyed by alert id."""

    def __init__(self, sink: "Sink", stream: str):
        self.sink = sink
        self.stream = stream

    def send(self, alert: "Alert", change: "Change") -> None:
        """One message; retried, then raised."""
        if change == "update":
            return
        body = orjson.dumps({"change": change, "alert": alert.to_json()})
        _retry(lambda: self.sink.send(self.stream, [body], [alert.id]), "alert stream")


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _retry(operation, what: str, attempts: int | None = 5, raise_at_end: bool = True,
           stopping: Callable[[], bool] | None = None, max_delay_s: float = 5.0) -> None:
    """Run ``operation`` with exponential backoff (0.1 s doubling up to ``max_delay_s``).

    After ``attempts`` failures the error is logged and raised (or dropped: ``raise_at_end``);
    with ``attempts=None`` it is retried until it succeeds or ``stopping()`` turns true, which
    raises ``SinkStopped``.
    """
    delay, attempt = 0.1, 0
    while True:
        try:
            operation()
            if attempt:
                log.info("alert sink delivered after a failure", sink=what, attempts=attempt + 1)
            return
        except Exception as exc:  # noqa: BLE001 - a sink failing must not lose the alert silently
            attempt += 1
            if attempts is not None and attempt >= attempts:
                log.error("alert sink failed", sink=what, error=str(exc)[:300])
                if raise_at_end:
                    raise
                return
            metrics.ALERT_SINK_RETRIES.labels(what).inc()
            log.warning("alert sink failed; retrying", sink=what, attempt=attempt, error=str(exc)[:300],
                        retry_in_s=round(delay, 2))
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if stopping is not None and stopping():
                raise SinkStopped(f"stopped while {what} kept failing")
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, max_delay_s)
