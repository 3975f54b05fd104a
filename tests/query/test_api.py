"""The HTTP API on a real uvicorn server (loopback, free port) over the loaded test store."""

from __future__ import annotations

import csv
import io

import httpx
import orjson
import pytest

from fleetlens.api.app import create_app
from fleetlens.api.auth import TokenStore
from fleetlens.api.server import serve_in_thread
from fleetlens.settings import Settings
from tests.query.conftest import START_MS

WHOLE = {"start": "2026-11-18T11:06:40Z", "end": START_MS + 3 * 3600_000 + 60_000}


@pytest.fixture(scope="module")
def api(loaded, tmp_path_factory):
    """A client of the API with an admin token (no rate limit: the load and schemathesis runs are bursts)."""
    settings = Settings(query={"max_rows": 5000, "max_buckets": 20_000, "timeout_s": 30},
                        auth={"tokens_file": tmp_path_factory.mktemp("auth") / "tokens.json", "rate_limit_per_s": 0})
    token = TokenStore(settings.tokens_path).create("admin", "tests")
    handle = serve_in_thread(create_app(loaded, settings), "127.0.0.1", 0)
    with httpx.Client(base_url=handle.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        client.token = token  # type: ignore[attr-defined]
        yield client
    handle.stop()
    assert not handle.thread.is_alive()


def test_openapi_lists_every_route(api):
    spec = api.get("/openapi.json").json()
    assert set(spec["paths"]) >= {"/health", "/trace/{action_id}", "/events", "/users", "/business", "/perf/durations",
                                  "/perf/resources", "/anomalies", "/rejections", "/healthz", "/readyz", "/metrics",
                                  "/auth/login", "/auth/logout", "/auth/me", "/admin/tokens", "/admin/tokens/{token_id}"}
    assert api.get("/docs").status_code == 200
    assert api.get("/health").json() == {"ok": True}


def test_trace(api, loaded):
    action_id = loaded.query_scalar("SELECT action_id FROM events WHERE operation = 'buy' ORDER BY event_id LIMIT 1")
    response = api.get(f"/trace/{action_id}")
    body = response.json()
    assert body["found"] and body["events"] and body["spans"] and body["elapsed_ms"] > 0
    assert float(response.headers["X-Elapsed-Ms"]) == pytest.approx(body["elapsed_ms"], abs=0.001)
    stamps = [e["ts"] for e in body["events"]]
    assert stamps == sorted(stamps) and {e["action_id"] for e in body["events"]} == {action_id}
    missing = api.get("/trace/nope")
    assert missing.status_code == 404 and missing.json()["param"] == "action_id"


def test_events_json_pages_and_exports(api):
    params = {**WHOLE, "level": "error,warn", "service": ["payment", "gateway"], "limit": 50}
    first = api.get("/events", params=params).json()
    assert len(first["events"]) == 50 and first["next_cursor"]
    assert {e["level"] for e in first["events"]} <= {"error", "warn"}
    second = api.get("/events", params={**params, "cursor": first["next_cursor"]}).json()
    assert not {e["event_id"] for e in first["events"]} & {e["event_id"] for e in second["events"]}
    assert {c["level"] for c in first["counts"]} >= {"info", "error"}
    as_csv = api.get("/events", params={**params, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv") and as_csv.headers["x-next-cursor"] == first["next_cursor"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in first["events"]]
    as_nd = api.get("/events", params={**params, "format": "ndjson"})
    assert [orjson.loads(line)["event_id"] for line in as_nd.content.splitlines()] == [e["event_id"] for e in first["events"]]
    text = api.get("/events", params={**WHOLE, "text": "TIMEOUT", "limit": 20}).json()
    assert text["events"] and all("timeout" in e["message"].lower() for e in text["events"])


@pytest.mark.parametrize("path,params,key", [
    ("/users", {"step": "5m"}, "users"),
    ("/business", {"interval": "15m"}, "totals"),
    ("/perf/durations", {"interval": "1h", "by": "event_type", "service": "payment"}, "durations"),
    ("/perf/resources", {"interval": "15m", "group": "service"}, "resources"),
    ("/anomalies", {"severity": "warning"}, "alerts"),
    ("/rejections", {}, "by_reason"),
])
def test_aggregate_endpoints(api, path, params, key):
    response = api.get(path, params={**WHOLE, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body[key] and body["range"]["start"] == "2026-11-18T11:06:40.000Z" and "elapsed_ms" in body


def test_default_range_is_the_last_hour(api):
    body = api.get("/business").json()
    assert body["totals"] and all(t["transactions"] == 0 for t in body["totals"])  # the dataset is in the past


@pytest.mark.parametrize("path,params,param", [
    ("/events", {"level": "loud"}, "level"),
    ("/events", {"limit": "0"}, "limit"),
    ("/events", {"limit": "many"}, "limit"),
    ("/events", {"limit": "99999"}, "limit"),
    ("/events", {"cursor": "%%%"}, "cursor"),
    ("/events", {"format": "xml"}, "format"),
    ("/events", {"start": "noon"}, "start"),
    ("/events", {"start": "2026-11-18T12:00:00Z", "end": "2026-11-18T11:00:00Z"}, "start"),
    ("/events", {"text": "!!!"}, "text"),
    ("/users", {"step": "10s"}, "step"),
    ("/users", {"window_min": "0"}, "window_min"),
    ("/business", {"interval": "2h"}, "interval"),
    ("/perf/durations", {"by": "1; DROP TABLE events"}, "by"),
    ("/perf/resources", {"group": "pod"}, "group"),
    ("/perf/resources", {"interval": "1m", "start": "2026-01-01T00:00:00Z", "end": "2026-01-30T00:00:00Z"}, "interval"),
    ("/anomalies", {"cursor": "eyJ4IjoxfQ"}, "cursor"),
    ("/rejections", {"end": "99999999999999999999"}, "end"),
])
def test_bad_parameters_get_400_naming_them(api, path, params, param):
    response = api.get(path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["param"] == param and param in body["error"]
    assert "Traceback" not in response.text


def test_load_generator_runs_every_family(api):
    from fleetlens.workload.mix import BUILDERS, DEFAULT_MIX, parse_mix
    from fleetlens.workload.runner import Context, run_load

    ctx = Context(str(START_MS), str(START_MS + 3600_000), ("no-such-action",), ("payment",))
    action = api.get("/events", params={**WHOLE, "operation": "buy", "limit": 5}).json()["events"][0]["action_id"]
    ctx = Context(ctx.start, ctx.end, (action,), ctx.services)
    result = run_load(str(api.base_url), parse_mix(DEFAULT_MIX), rate=40, clients=4, duration_s=5, ctx=ctx,
                      token=api.token).summary()
    assert set(result["families"]) == set(BUILDERS)
    assert all(f["errors"] == 0 and f["p99_ms"] >= f["p50_ms"] > 0 for f in result["families"].values())
    # the server's own time (X-Elapsed-Ms) is inside each request's: so is every percentile of it
    assert all(0 < f[f"server_p{q}_ms"] <= f[f"p{q}_ms"] for f in result["families"].values() for q in (50, 95, 99))
    # 40/s for 5 s, open loop: fewer go out when the machine is saturated (seen: 79 of 120 in 3 s)
    assert 100 <= result["requests"] <= 215
    with pytest.raises(ValueError, match="unknown query family"):
        parse_mix("trace=1,nope=2")


def test_schemathesis_finds_no_server_error(api):
    """Schemathesis generates requests from the OpenAPI spec: none may get a 5xx."""
    import subprocess
    import sys
    from pathlib import Path

    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [str(st), "run", str(api.base_url).rstrip("/") + "/openapi.json", "--checks", "not_a_server_error",
         "--header", f"Authorization: Bearer {api.token}",
         "--max-examples", "25", "--seed", "1", "--no-color"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert "generated" in run.stdout and " passed" in run.stdout, run.stdout[-4000:]
