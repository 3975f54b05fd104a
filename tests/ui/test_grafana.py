"""The Grafana dashboard: the committed JSON is the generated one, it is well-formed Grafana dashboard
JSON, and every panel's SQL runs on a real store (macros expanded as the ClickHouse plugin does) with
the same numbers as the API for the same range."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from fleetlens.ui import grafana

ROOT = Path(__file__).resolve().parents[2]
PANEL_TYPES = {"row", "timeseries", "table", "stat", "barchart", "logs"}


def expand(sql: str, start_ms: int, end_ms: int, interval_s: int) -> str:
    """The plugin's macro expansion for a fixed range and interval."""
    return (sql.replace("$__fromTime_ms", f"fromUnixTimestamp64Milli({start_ms})")
               .replace("$__toTime_ms", f"fromUnixTimestamp64Milli({end_ms})")
               .replace("$__interval_s", str(interval_s)))


def ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_committed_dashboard_is_the_generated_one():
    committed = (ROOT / grafana.OUTPUT).read_text()
    assert committed == grafana.render(), "run python -m fleetlens.ui.grafana and commit deploy/grafana/dashboards/"
    assert grafana.main(["--check", str(ROOT / grafana.OUTPUT)]) == 0


def test_dashboard_is_valid_grafana_json():
    board = json.loads(grafana.render())
    for key in ("uid", "title", "panels", "schemaVersion", "time", "templating", "annotations"):
        assert key in board
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in board["panels"]:
        assert p["type"] in PANEL_TYPES and p["title"]
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in "hwxy") and g["x"] + g["w"] <= 24 and g["h"] >= 1
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']} overlaps another"
                cells.add((x, y))
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": "fleetlens-clickhouse"}
        (target,) = p["targets"]
        assert target["datasource"]["type"] == "grafana-clickhouse-datasource" and target["editorType"] == "sql"
        assert "$__fromTime_ms" in target["rawSql"] and "{" not in target["rawSql"].replace("{}", "")
    provisioned = (ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yaml").read_text()
    assert "uid: fleetlens-clickhouse" in provisioned and "type: grafana-clickhouse-datasource" in provisioned
    titles = {p["title"] for p in board["panels"]}
    for row in ("Overview", "Business", "Performance", "Logs", "Alerts"):
        assert row in titles


def test_every_panel_query_runs_and_matches_the_api(stack):
    start_ms, end_ms = ms(stack.start), ms(stack.end)
    board = json.loads(grafana.render())
    results = {}
    for p in board["panels"]:
        if p["type"] == "row":
            continue
        sql = expand(p["targets"][0]["rawSql"], start_ms, end_ms, 900)
        results[p["title"]] = stack.store.query_arrow(sql).to_pylist()
    empty = [title for title, rows in results.items() if not rows]
    assert not empty, f"panels without rows over the simulated range: {empty}"
    api = stack.get("/business", start=stack.start, end=stack.end, interval="15m")
    by_bucket = {ms(r["bucket"]): r for r in api["totals"]}
    for row in results["Transactions per interval"]:
        expected = by_bucket[int(row["time"].timestamp() * 1000)]
        assert (row["transactions"], row["failed_buys"]) == (expected["transactions"], expected["failed_buys"])
    assert sum(r["transactions"] for r in results["Transactions per interval"]) == sum(r["transactions"] for r in api["totals"]) > 0
    retried = {r["provider"]: r["retried_purchases"] for r in results["Payment retries by provider and eventual outcome"]}
    api_retried: dict[str, int] = {}
    for r in api["retries"]:
        api_retried[r["provider"]] = api_retried.get(r["provider"], 0) + r["retries"]
    assert retried == api_retried
    firing = results["Firing alerts"]
    assert [r["rule"] for r in firing] == ["payment_failures_same_provider"]
