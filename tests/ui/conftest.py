"""A running stack for the browser tests: a real Redis-protocol server fed by the simulator (40 minutes
of backlog at once, then live in real time), an ingest worker storing into a temporary chDB store, the API and
dashboard served on a free loopback port, and headless Chromium (Debian's, driven by Playwright).

Alert rows are inserted into the ``alerts`` table directly (firing and resolved, evidence naming real
stored events), as the detector would write them.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pytest

from fleetlens.api.app import create_app
from fleetlens.api.auth import TokenStore
from fleetlens.api.server import serve_in_thread
from fleetlens.api.stats import LiveIngest
from fleetlens.ingest.run import build_worker
from fleetlens.ingest.stats import IngestStats
from fleetlens.settings import Settings
from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.runner import run_simulation
from fleetlens.simulate.scenarios import ScenarioSpec
from fleetlens.sources.factory import open_sink
from fleetlens.sources.redis_server import RedisServer, free_port
from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema

CHROMIUM = os.environ.get("FLEETLENS_CHROMIUM", "/usr/bin/chromium")
BACKLOG_S = 40 * 60
RATE = 40.0


@dataclass
class Stack:
    """What the tests need: the server's url, the store, and the range the backlog covers."""

    url: str
    store: EmbeddedStore
    start: str  # ISO, whole minutes: the tests' absolute range
    end: str
    alerts: list[dict]
    stats: IngestStats
    token: str  # a read token (access control is on, as by default)
    settings: Settings | None = None  # of the stack's MQ and data dir (for tests that add a role)

    def get(self, path: str, **params):
        """GET ``path`` (may hold a query) from the API with the read token; the JSON body."""
        response = httpx.get(self.url + path, params=params or None, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        response.raise_for_status()
        return response.json()


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("uistack")
    redis = RedisServer(free_port(), base / "redis").start()
    settings = Settings(data_dir=base, redis={"url": redis.url.replace("valkey://", "redis://"), "block_ms": 100},
                        query={"timeout_s": 30})
    store = EmbeddedStore(base / "chdb", "fleetlens", query_timeout_s=30)
    ensure_schema(store)
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms - BACKLOG_S * 1000) // 60_000 * 60_000
    backlog = SimulationConfig(seed=7, rate=RATE, users=300, start_ms=start_ms, duration_s=(now_ms - start_ms) / 1000,
                               events_per_message=50,
                               scenarios=(ScenarioSpec.parse("provider_outage@600+600"),
                                          ScenarioSpec.parse("error_spike:payment@1500+300")))
    live = SimulationConfig(seed=8, rate=RATE, users=300, start_ms=now_ms, events_per_message=10)
    stop = threading.Event()
    sink = open_sink(settings)

    def simulate() -> None:
        # the last 40 minutes at once, then the fleet live (event time = wall time) until the end
        run_simulation(backlog, sink, stream=settings.streams[0])
        run_simulation(live, sink, stream=settings.streams[0], realtime=True, stop=stop)

    simulator = threading.Thread(target=simulate, name="ui-simulator", daemon=True)
    stats = IngestStats()
    worker = build_worker(settings, store, stats)
    ingest_stop = threading.Event()
    ingest = threading.Thread(target=worker.run, args=(ingest_stop,), name="ui-ingest", daemon=True)
    simulator.start()
    ingest.start()
    app = create_app(store, settings)
    app.state.live_ingest = LiveIngest(stats, worker)
    server = serve_in_thread(app, "127.0.0.1", 0)
    try:
        # the backlog is in once the store holds events up to a few seconds ago and the group has caught up
        end_ms = now_ms // 60_000 * 60_000
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            newest = store.query_scalar("SELECT toUnixTimestamp64Milli(max(ts)) FROM events")
            if newest and int(newest) >= end_ms and worker.source.lag().total < 100:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("the simulated backlog was not ingested within 60 s")
        alerts = _insert_alerts(store, start_ms, end_ms)
        token = TokenStore(settings.tokens_path).create("read", "ui-tests")
        yield Stack(server.url, store, _iso(start_ms), _iso(end_ms), alerts, stats, token, settings)
    finally:
        server.stop()
        stop.set()
        simulator.join(10)
        ingest_stop.set()
        ingest.join(30)
        worker.source.close()
        sink.close()
        store.close()
        redis.stop()


def _insert_alerts(store: EmbeddedStore, start_ms: int, end_ms: int) -> list[dict]:
    """A firing provider alert whose evidence names real failed payment attempts, and a resolved one."""
    failed = store.query_arrow(
        "SELECT event_id, action_id, provider FROM events WHERE operation = 'payment_attempt' AND outcome = 'failure' "
        "AND ts >= fromUnixTimestamp64Milli({t:Int64}) ORDER BY ts, event_id LIMIT 5", {"t": start_ms + 600_000}).to_pylist()
    provider = failed[0]["provider"]
    rows = [
        {"id": "ui-alert-firing", "rule": "payment_failures_same_provider", "key": provider, "severity": "critical",
         "ts_start": start_ms + 600_000, "ts_end": end_ms - 60_000, "status": "firing",
         "evidence": orjson.dumps({"failures": 37, "min_failures": 5, "window_s": 120,
                                   "event_ids": [f["event_id"] for f in failed]}).decode()},
        {"id": "ui-alert-resolved", "rule": "error_rate_spike", "key": "payment", "severity": "warning",
         "ts_start": start_ms + 1_500_000, "ts_end": start_ms + 1_800_000, "status": "resolved",
         "evidence": orjson.dumps({"error_rate": 0.41, "threshold": 0.2}).decode()},
    ]
    store.insert_arrow("alerts", pa.table({
        **{k: [r[k] for r in rows] for k in ("id", "rule", "key", "severity", "status", "evidence")},
        "ts_start": pa.array([r["ts_start"] for r in rows], pa.timestamp("ms", "UTC")),
        "ts_end": pa.array([r["ts_end"] for r in rows], pa.timestamp("ms", "UTC")),
    }))
    return rows


@pytest.fixture(scope="package")
def browser():
    """Headless Debian Chromium driven by Playwright (its own browser download is not used)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture(scope="package")
def artifacts():
    """Where screenshots go: test-artifacts/ui (git-ignored) or $FLEETLENS_ARTIFACTS."""
    path = Path(os.environ.get("FLEETLENS_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")) / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path
