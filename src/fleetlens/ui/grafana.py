"""Grafana dashboard for deployments, generated from the query families' own SQL.

``python -m fleetlens.ui.grafana`` writes ``deploy/grafana/dashboards/fleetlens.json`` (``--check``
only compares). The panels mirror the built-in dashboard (overview, business, performance, logs,
alerts) and read the fleetlens tables through the ClickHouse data source plugin
(``grafana-clickhouse-datasource``, uid ``fleetlens-clickhouse`` from deploy/grafana/provisioning).

The SQL is not written twice: each panel takes a query family's statement from ``fleetlens.query``
and :func:`grafana_sql` turns its bound parameters into the plugin's macros (``{start:…}`` →
``$__fromTime_ms``, ``{step:Int64}`` → the panel interval, …). A parameter without a translation is
an error, so a changed query cannot silently produce a broken panel.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetlens.query import anomalies, business, events, ingest, perf, users
from fleetlens.query.common import MINUTE_BUCKET, union_over
from fleetlens.query.trace import EVENT_COLUMNS

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE = {"type": PLUGIN, "uid": "fleetlens-clickhouse"}
OUTPUT = Path("deploy/grafana/dashboards/fleetlens.json")
ROW_LIMIT = 10_000

# Bound parameters of the query families → Grafana ClickHouse macros (plugin v4).
STEP_MS = "(toInt64($__interval_s) * 1000)"
MACROS = {
    "start": "$__fromTime_ms",
    "end": "$__toTime_ms",
    "step": STEP_MS,
    "limit": str(ROW_LIMIT),
}
_PARAM = re.compile(r"\{(\w+):[^{}]*(?:\([^{}]*\))?\}")


def grafana_sql(sql: str, source: str = "events", **values: str) -> str:
    """``sql`` with each ``{name:Type}`` parameter replaced by ``values[name]`` or its macro in MACROS, and its
    table placeholder by ``source`` (Grafana reads the hot tables)."""
    table = {**MACROS, **values}

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in table:
            raise KeyError(f"no Grafana translation for query parameter {{{name}:…}}")
        return table[name]

    out = _PARAM.sub(sub, sql)
    out = out.replace("{source}", source).replace("<source>", source)
    if re.search(r"\{\w+:|<\w+>|\{source\}", out):
        raise ValueError(f"unrendered placeholder left in:\n{out}")
    return "\n".join(line.rstrip() for line in out.strip().splitlines())


@dataclass
class Panel:
    """One Grafana panel: title, visualization, size, and its SQL (``table``: table format, else time series)."""

    title: str
    kind: str  # timeseries | table | stat | barchart | logs
    sql: str
    width: int = 12
    height: int = 8
    table: bool = False
    unit: str | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def _one_pass(outer: str, slot: str, branch: str) -> str:
    """A family's statement that splits its range (whole minutes from the events_1m projection, query/common.py)
    as one pass over the rows instead: Grafana's ``$__interval`` may be shorter than a minute, so buckets are
    the families' plain epoch-aligned ``ts`` buckets, and the range is the plain one."""
    plain = "ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}"
    return outer.replace(slot, union_over(branch.replace(MINUTE_BUCKET, business.BUCKET.format(ts="ts")), [plain]))


def _wrap(columns: str, sql: str, tail: str = "") -> str:
    """``SELECT columns FROM (sql) tail``: picks or derives columns of a family's result."""
    return f"SELECT {columns}\nFROM (\n{sql.strip()}\n)\n{tail}".strip()


def _sections() -> list[tuple[str, list[Panel]]]:
    """The dashboard: rows of panels, each panel's SQL derived from the query families."""
    ingest_sql = grafana_sql(_one_pass(ingest.EVENTS_SQL, "{branches}", ingest.EVENTS_BRANCH))
    totals = grafana_sql(_one_pass(business.TOTALS_SQL, "{branches}", business.TOTALS_BRANCH))
    retries = grafana_sql(business.RETRIES_SQL, source="payment_attempts")
    durations_sql = _one_pass(perf.DURATIONS_SQL, "<branches>", perf.DURATIONS_BRANCH).replace("<filters>", "")
    durations = grafana_sql(durations_sql.replace("<column>", "operation"), kind="'business'")
    log_durations = grafana_sql(durations_sql.replace("<column>", "event_type"), kind="'log'")
    resources = grafana_sql(perf.RESOURCES_SQL.replace("<group>", "host").replace("<filters>", ""), source="metrics")
    active = grafana_sql(_one_pass(perf.ACTIVE_SQL, "<branches>", perf.ACTIVE_BRANCH.replace("<bucket>", MINUTE_BUCKET)))
    window_ms = "300000"  # settings.query.users_window_min (5) in ms
    users_sql = grafana_sql(
        users.SQL, source="users_1m", window=window_ms,
        first=f"intDiv(toUnixTimestamp64Milli($__fromTime_ms) + {STEP_MS} - 1, {STEP_MS}) * {STEP_MS}",
        end_ms="toUnixTimestamp64Milli($__toTime_ms)",
        lo=f"fromUnixTimestamp64Milli(intDiv(toUnixTimestamp64Milli($__fromTime_ms) + {STEP_MS} - 1, {STEP_MS}) * {STEP_MS} - {window_ms})",
    )
    where = "ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')} AND kind = 'log' AND level IN ('warn', 'error')"
    logs_sql = grafana_sql(events.LIST_SQL.format(columns=EVENT_COLUMNS, source="events", where=where), limit="1000")
    alerts_sql = grafana_sql(anomalies.SQL.replace("{filters}", ""), limit="500")
    firing_sql = grafana_sql(anomalies.SQL.replace("{filters}", "AND status = 'firing'"), limit="500")
    per_s = "toFloat64($__interval_s)"
    return [
        ("Overview", [
            Panel("Events ingested per second (by event time)", "timeseries",
                  _wrap(f"bucket AS time, events / {per_s} AS `events/s`, business / {per_s} AS `business/s`", ingest_sql), unit="short"),
            Panel("Error rate (% of log lines at level error)", "timeseries",
                  _wrap("bucket AS time, if(logs > 0, 100 * errors / logs, 0) AS `error %`", ingest_sql), unit="percent"),
            Panel("Firing alerts", "table", _wrap("severity, rule, key, ts_start, ts_end, evidence", firing_sql), width=24, table=True),
        ]),
        ("Business", [
            Panel("Transactions per interval", "timeseries", _wrap("bucket AS time, transactions, failed_buys", totals)),
            Panel("Page views per interval", "timeseries", _wrap("bucket AS time, page_views", totals)),
            Panel("Amounts per interval", "timeseries", _wrap("bucket AS time, transaction_amount AS sales, refund_amount AS refunds", totals)),
            Panel("Simultaneous users (5 min window)", "timeseries", _wrap("t AS time, viewing, buying", users_sql)),
            Panel("Payment retries by provider and eventual outcome", "table",
                  _wrap("provider, sum(retries) AS retried_purchases, sum(succeeded) AS succeeded, sum(failed) AS failed, "
                        "sum(attempts) AS attempts", retries, "GROUP BY provider\nORDER BY retried_purchases DESC"),
                  width=24, table=True),
        ]),
        ("Performance", [
            Panel("p95 latency by service/operation", "timeseries",
                  _wrap("bucket AS time, concat(service, '/', name) AS series, q[3] AS p95", durations, "ORDER BY time"), unit="ms"),
            Panel("p95 latency by service/log event type", "timeseries",
                  _wrap("bucket AS time, concat(service, '/', name) AS series, q[3] AS p95", log_durations, "ORDER BY time"), unit="ms"),
            Panel("CPU % per host (average)", "timeseries", _wrap("bucket AS time, host, cpu_avg", resources, "ORDER BY time"), width=8, unit="percent"),
            Panel("RAM % per host (average)", "timeseries", _wrap("bucket AS time, host, mem_avg", resources, "ORDER BY time"), width=8, unit="percent"),
            Panel("Active users per interval", "timeseries", _wrap("bucket AS time, active_users", active), width=8),
        ]),
        ("Logs", [
            Panel("Warnings and errors, newest first", "table",
                  _wrap("ts, level, service, event_type, message, action_id", logs_sql), width=24, height=10, table=True),
        ]),
        ("Alerts", [
            Panel("Alert history", "table", _wrap("severity, status, rule, key, ts_start, ts_end, evidence", alerts_sql),
                  width=24, table=True),
        ]),
    ]


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit} if panel.unit else {}
    return {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": panel.options or ({"showHeader": True} if panel.table else {"legend": {"displayMode": "list", "placement": "bottom"}}),
        "targets": [{
            "refId": "A",
            "datasource": DATASOURCE,
            "editorType": "sql",
            "queryType": "table" if panel.table else "timeseries",
            "format": 1 if panel.table else 0,
            "rawSql": panel.sql,
        }],
    }


def dashboard() -> dict[str, Any]:
    """The fleetlens dashboard as Grafana JSON (schemaVersion 39)."""
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for row_title, row in _sections():
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y, x, row_h = pid + 1, y + 1, 0, 0
        for panel in row:
            if x + panel.width > 24:
                x, y, row_h = 0, y + row_h, 0
            panels.append(_panel_json(panel, pid, x, y))
            pid, x, row_h = pid + 1, x + panel.width, max(row_h, panel.height)
        y += row_h
    return {
        "uid": "fleetlens-main",
        "title": "fleetlens",
        "description": "The fleet's business, performance, logs and alerts from the fleetlens ClickHouse tables "
                       "(generated by python -m fleetlens.ui.grafana; edit src/fleetlens/ui/grafana.py, not this file).",
        "tags": ["fleetlens"],
        "timezone": "utc",
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": []},
        "panels": panels,
    }


def render() -> str:
    """The dashboard JSON as written to disk (stable key order, trailing newline)."""
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) deploy/grafana/dashboards/fleetlens.json; run from the repository root."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(next((a for a in args if not a.startswith("--")), OUTPUT))
    text = render()
    if "--check" in args:
        if not path.is_file() or path.read_text() != text:
            print(f"{path} is stale: run python -m fleetlens.ui.grafana", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
