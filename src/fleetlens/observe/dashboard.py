"""The Grafana dashboard of fleetlens itself, generated from code (metric names from ``metrics``).

``python -m fleetlens.observe.dashboard [FILE]`` writes it (default
``deploy/grafana/dashboards/fleetlens-self.json``); a test fails when the file is stale. The data
source is a dashboard variable, so it binds to whichever Prometheus data source is provisioned.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path("deploy/grafana/dashboards/fleetlens-self.json")
UID = "fleetlens-self"
_DS = {"type": "prometheus", "uid": "${datasource}"}


def _sel(extra: str = "") -> str:
    inner = 'instance=~"$instance"' + (f", {extra}" if extra else "")
    return "{" + inner + "}"


class _Layout:
    """Panels placed left to right, 24 grid units wide, rows of equal height."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.y = 0
        self.x = 0
        self.next_id = 1

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y = 0, self.y + 8
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.next_id += 1
        self.y += 1

    def panel(self, title: str, targets: list[tuple[str, str]], unit: str = "short", width: int = 8,
              kind: str = "timeseries", description: str = "") -> None:
        if self.x + width > 24:
            self.x, self.y = 0, self.y + 8
        self.panels.append({
            "type": kind, "title": title, "id": self.next_id, "datasource": _DS, "description": description,
            "gridPos": {"h": 8, "w": width, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
            "targets": [{"refId": chr(ord("A") + i), "datasource": _DS, "expr": expr, "legendFormat": legend}
                        for i, (expr, legend) in enumerate(targets)],
        })
        self.next_id += 1
        self.x += width


def build() -> dict[str, Any]:
    """The dashboard model (Grafana JSON, schemaVersion 39)."""
    s = _sel()
    lay = _Layout()
    lay.row("Ingest")
    lay.panel("Rows stored / s", [(f"sum by (table) (rate(fleetlens_events_stored_total{s}[1m]))", "{{table}}")],
              "ops", description="Events and metric samples inserted into the hot store.")
    lay.panel("Consumed / s", [(f"sum(rate(fleetlens_events_consumed_total{s}[1m]))", "lines"),
                               (f"sum(rate(fleetlens_messages_consumed_total{s}[1m]))", "MQ messages"),
                               (f"sum(rate(fleetlens_ingest_batches_total{s}[1m]))", "batches")], "ops",
              description="Acknowledged work: lines (stored + rejected + duplicates), MQ messages, batches.")
    lay.panel("Rejected lines / s by reason", [(f"sum by (reason) (rate(fleetlens_events_rejected_total{s}[5m]))",
                                               "{{reason}}")], "ops",
              description="Lines sent to the dead-letter stream, by the field the reason is about.")
    lay.panel("Consumer lag (messages)", [(f"sum by (group, stream, state) (fleetlens_consumer_lag_messages{s})",
                                          "{{group}} {{stream}} {{state}}")],
              description="Not yet acknowledged by the consumer group. Growing for long: ingest cannot keep up or is stuck.")
    lay.panel("Store insert latency", [
        (f"histogram_quantile({q}, sum by (le, table) (rate(fleetlens_store_insert_seconds_bucket{s}[5m])))",
         f"p{int(q * 100)} {{{{table}}}}") for q in (0.5, 0.95, 0.99)], "s")
    lay.panel("Batch size (lines)", [
        (f"histogram_quantile({q}, sum by (le) (rate(fleetlens_ingest_batch_events_bucket{s}[5m])))", f"p{int(q * 100)}")
        for q in (0.5, 0.95)], "short")
    lay.panel("Batch time to acknowledgement", [
        (f"histogram_quantile({q}, sum by (le) (rate(fleetlens_ingest_batch_seconds_bucket{s}[5m])))", f"p{int(q * 100)}")
        for q in (0.5, 0.95)] + [
        (f"histogram_quantile(0.95, sum by (le) (rate(fleetlens_ingest_decode_seconds_bucket{s}[5m])))", "decode p95")], "s")
    lay.panel("Retries / s by operation", [(f"sum by (operation) (rate(fleetlens_ingest_retries_total{s}[5m]))",
                                            "{{operation}}")], "ops",
              description="MQ or store operations that failed and are retried with backoff (nothing is dropped).")
    lay.panel("In-flight batches and duplicates", [
        (f"sum(fleetlens_ingest_inflight_batches{s})", "in flight"),
        (f"sum(rate(fleetlens_duplicates_skipped_total{s}[5m]))", "duplicates skipped / s")])
    lay.panel("Lag measurement age", [
        (f"time() - max by (group) (fleetlens_consumer_lag_measured_timestamp_seconds{s})", "{{group}}")], "s",
        description="Seconds since the lag was last measured: growing means the MQ does not answer.")
    lay.row("Detection and alerts")
    lay.panel("Watermark delay", [(f"max by (stream) (fleetlens_detector_watermark_delay_seconds{s})", "{{stream}}")],
              "s", width=8, description="Wall clock minus the detector's event-time watermark.")
    lay.panel("Alerts fired (per hour)", [(f"sum by (rule, severity) (increase(fleetlens_alerts_fired_total{s}[1h]))",
                                          "{{rule}} {{severity}}")], width=8)
    lay.panel("Alert deliveries retried / s", [(f"sum by (sink) (rate(fleetlens_alert_sink_retries_total{s}[5m]))",
                                                "{{sink}}")], "ops", width=8,
              description="Alert changes a sink failed to take, retried with backoff (the store: until it is back).")
    lay.row("Archive")
    lay.panel("Archive bytes written / s", [(f"sum by (table) (rate(fleetlens_archive_bytes_total{s}[5m]))",
                                             "{{table}}")], "Bps", width=12)
    lay.panel("Archive lag", [(f"max by (table) (fleetlens_archive_lag_seconds{s})", "{{table}}")], "s", width=12,
              description="Age of the oldest hot data past the archive horizon not archived yet.")
    lay.row("Query API")
    lay.panel("Requests / s by family", [(f"sum by (family, status) (rate(fleetlens_api_request_seconds_count{s}[1m]))",
                                          "{{family}} {{status}}")], "reqps")
    lay.panel("Latency p95 by family", [
        (f"histogram_quantile(0.95, sum by (le, family) (rate(fleetlens_api_request_seconds_bucket{s}[5m])))",
         "{{family}}")], "s")
    lay.panel("Refused by access control / s", [(f"sum by (reason) (rate(fleetlens_api_auth_failures_total{s}[5m]))",
                                                 "{{reason}}")], "ops",
              description="no_token, bad_token, not_admin, rate_limited, too_many_failures, cross_origin.")
    lay.row("Processes")
    lay.panel("Resident memory", [(f"process_resident_memory_bytes{s}", "{{instance}}")], "bytes", width=12)
    lay.panel("CPU", [(f"rate(process_cpu_seconds_total{s}[1m])", "{{instance}}")], "percentunit", width=12)
    return {
        "uid": UID,
        "title": "fleetlens itself",
        "description": "How fleetlens is doing: ingest throughput, rejections, lag, insert latency, detector, archive, "
                       "API. Generated by python -m fleetlens.observe.dashboard.",
        "tags": ["fleetlens", "self-monitoring"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "utc",
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            {"name": "instance", "label": "Instance", "type": "query", "datasource": _DS,
             "query": {"query": "label_values(fleetlens_build_info, instance)", "refId": "instances"},
             "definition": "label_values(fleetlens_build_info, instance)", "includeAll": True, "multi": True,
             "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "refresh": 2, "hide": 0},
        ]},
        "annotations": {"list": []},
        "panels": lay.panels,
    }


def render() -> str:
    """The dashboard as the JSON text written to the file."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> None:
    """Write the dashboard to ``argv[0]`` (default ``OUTPUT``)."""
    path = Path(argv[0]) if argv else OUTPUT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
