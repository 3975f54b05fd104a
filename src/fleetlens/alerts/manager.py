"""Deduplication, cooldown and resolution: hits in, alert changes out to the sinks."""

from __future__ import annotations

import time
from typing import Callable, Iterable, Sequence

from fleetlens.alerts.model import Alert, Change, alert_id
from fleetlens.alerts.sinks import AlertSink
from fleetlens.detect.hits import Hit
from fleetlens.logsetup import get_logger

log = get_logger(__name__)


class AlertManager:
    """One open alert per (rule, key); hits within ``cooldown_ms`` of its last hit continue it.

    An alert resolves once the watermark is ``cooldown_ms`` past its last hit. Sinks are told of
    every change in order; the store sink goes last, so an alert it holds was sent everywhere
    (at-least-once notifications: receivers deduplicate by the alert id).
    """

    def __init__(self, sinks: Sequence[AlertSink], cooldown_ms: int,
                 on_change: Callable[[Alert, Change, float], None] | None = None):
        self.sinks = list(sinks)
        self.cooldown_ms = cooldown_ms
        self.open: dict[tuple[str, str], Alert] = {}
        self.on_change = on_change
        self.raised = 0

    def load(self, alerts: Iterable[Alert]) -> None:
        """Seed with alerts already raised (from the store): a replay continues them instead of raising new ones."""
        for alert in alerts:
            current = self.open.get((alert.rule, alert.key))
            if current is None or alert.ts_end > current.ts_end:
                self.open[(alert.rule, alert.key)] = alert

    def on_hits(self, hits: Iterable[Hit]) -> list[tuple[Alert, Change]]:
        """Apply hits (event-time order); returns and sends the changes."""
        changes: list[tuple[Alert, Change]] = []
        for hit in hits:
            k = (hit.rule, hit.key)
            alert = self.open.get(k)
            if alert is not None and hit.trigger_ms <= alert.ts_end + self.cooldown_ms and hit.trigger_ms >= alert.ts_start - self.cooldown_ms:
                if hit.trigger_ms <= alert.ts_end and alert.status == "firing":
                    alert.hits += 1  # a replayed or overlapping window: nothing new to say
                    continue
                alert.hits += 1
                alert.ts_end = max(alert.ts_end, hit.trigger_ms)
                alert.evidence = {**hit.evidence, "window_start_ms": hit.start_ms, "window_end_ms": hit.end_ms}
                change: Change = "update" if alert.status == "firing" else "firing"
                alert.status = "firing"
                changes.append((alert, change))
                continue
            alert = Alert(
                id=alert_id(hit.rule, hit.key, hit.start_ms),
                rule=hit.rule,
                key=hit.key,
                severity=hit.severity,
                ts_start=hit.trigger_ms,
                ts_end=hit.trigger_ms,
                evidence={**hit.evidence, "window_start_ms": hit.start_ms, "window_end_ms": hit.end_ms},
            )
            self.open[k] = alert
            self.raised += 1
            changes.append((alert, "firing"))
        self._send(changes)
        return changes

    def on_watermark(self, watermark_ms: int) -> list[tuple[Alert, Change]]:
        """Resolve alerts whose last hit is a cooldown behind the watermark; forget resolved ones."""
        changes: list[tuple[Alert, Change]] = []
        for k, alert in list(self.open.items()):
            if alert.ts_end + self.cooldown_ms < watermark_ms:
                if alert.status == "firing":
                    alert.status = "resolved"
                    changes.append((alert, "resolved"))
                del self.open[k]
        self._send(changes)
        return changes

    def _send(self, changes: list[tuple[Alert, Change]]) -> None:
        for alert, change in changes:
            for sink in self.sinks:
                sink.send(alert, change)
            if self.on_change:
                self.on_change(alert, change, time.time())
            if change != "update":
                log.info("alert " + change, rule=alert.rule, key=alert.key, id=alert.id, severity=alert.severity)
