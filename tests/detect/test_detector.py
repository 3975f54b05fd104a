"""The detector as a consumer of a real Redis-protocol server: sinks, restart without double alerts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fleetlens.detect.config import RulesConfig
from fleetlens.detect.runner import Detector
from fleetlens.settings import Settings
from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.generator import Simulator
from fleetlens.simulate.runner import encode_messages
from fleetlens.simulate.scenarios import ScenarioSpec
from fleetlens.sources.lag_probe import GroupLagProbe
from fleetlens.sources.redis import RedisStreamSink
from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema

START_MS = 1_790_000_000_000


class Receiver:
    """A real HTTP server on loopback recording every POST body (webhook / Alertmanager stand-in receiver)."""

    def __init__(self):
        self.bodies: list[tuple[str, object]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.bodies.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _payloads(scenarios: tuple[str, ...], duration_s: float, rate: float = 300, seed: int = 3):
    config = SimulationConfig(seed=seed, rate=rate, duration_s=duration_s, start_ms=START_MS,
                              scenarios=tuple(ScenarioSpec.parse(s) for s in scenarios))
    sim = Simulator(config)
    events = [e for b in sim.batches() for e in b]
    return events, sim.labels()


def _settings(redis_server, tmp_path, **detect) -> Settings:
    return Settings(data_dir=tmp_path / "data", redis={"url": redis_server.url, "embedded": False},
                    detect={"consumer": "d1", "batch_ms": 50, **detect})


def _alerts(store) -> list[dict]:
    return store.query_arrow("SELECT id, rule, key, status FROM alerts FINAL ORDER BY rule, key").to_pylist()


def test_alerts_reach_every_sink(redis_server, redis_client, tmp_path, alertmanager):
    events, labels = _payloads(("provider_outage@120+90", "service_crash@60+5"), 300)
    RedisStreamSink(redis_client).send("fleet.events", encode_messages(events, 50))
    hook = Receiver()
    settings = _settings(redis_server, tmp_path, webhook_urls=[hook.url + "/hook"], alertmanager_url=alertmanager.url)
    store = EmbeddedStore(tmp_path / "chdb", "fleetlens")
    ensure_schema(store)
    try:
        # a short cooldown, so alerts of the first scenario resolve within the run
        stats = Detector(settings, store, RulesConfig(cooldown_s=30)).run(until_idle_s=1.5)
        stored = _alerts(store)
    finally:
        store.close()
        hook.close()
    assert stats.events == len(events)
    assert {(a["rule"], a["key"]) for a in stored} >= {
        ("payment_failures_same_provider", _key(labels, "provider_outage")),
        ("provider_error_streak", _key(labels, "provider_outage")),
        ("error_log", _key(labels, "service_crash")),
    }
    ids = {a["id"] for a in stored}
    fired = [b["alert"]["id"] for path, b in hook.bodies if b["change"] == "firing"]
    assert sorted(fired) == sorted(ids)  # one firing notification per alert
    crash = next(a for a in stored if a["rule"] == "error_log")
    assert crash["status"] == "resolved"  # the crash was at 60 s; the run goes on to 300 s
    resolved = [b["alert"]["id"] for path, b in hook.bodies if b["change"] == "resolved"]
    assert crash["id"] in resolved and len(resolved) == len(set(resolved))
    # The real Alertmanager holds every alert still firing (labels as documented) and none of the resolved.
    active = {a["labels"]["alert_id"]: a for a in alertmanager.alerts() if a["labels"].get("source") == "fleetlens"}
    firing = {a["id"] for a in stored if a["status"] == "firing"}
    assert set(active) == firing and firing
    assert all(active[i]["labels"]["alertname"] == next(a["rule"] for a in stored if a["id"] == i) for i in firing)
    streamed = [json.loads(f[b"data"]) for _, f in redis_client.xrange("fleet.alerts")]
    assert {m["alert"]["id"] for m in streamed if m["change"] == "firing"} == ids


def _wait_consumed(settings: Settings, group: str, timeout_s: float = 60) -> None:
    probe = GroupLagProbe(settings, group)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if probe.lag() == 0:
                return
            time.sleep(0.2)
    finally:
        probe.close()
    raise AssertionError("detector did not catch up")


@pytest.mark.slow
def test_sigkill_mid_scenario_then_restart_alerts_once(redis_server, redis_client, tmp_path):
    events, labels = _payloads(("provider_outage@200+120", "service_crash@150+5"), 420)
    split = next(i for i, e in enumerate(events) if e["ts"] >= _iso(START_MS + 260_000))  # mid-outage
    sink = RedisStreamSink(redis_client)
    settings = _settings(redis_server, tmp_path)
    env = {**os.environ, "FLEETLENS_DATA_DIR": str(tmp_path / "data"), "FLEETLENS_REDIS__URL": redis_server.url,
           "FLEETLENS_DETECT__CONSUMER": "d1", "FLEETLENS_OBSERVE__METRICS_SERVER": "false"}
    cmd = [sys.executable, "-m", "fleetlens", "detect"]

    sink.send("fleet.events", encode_messages(events[:split], 50))
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_consumed(settings, "detect")
        time.sleep(0.5)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    sink.send("fleet.events", encode_messages(events[split:], 50))
    second = subprocess.run([*cmd, "--until-idle", "2"], env=env, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode()[-2000:]

    store = EmbeddedStore(tmp_path / "data" / "chdb", "fleetlens")
    try:
        stored = _alerts(store)
    finally:
        store.close()
    assert_each_alerted_once(stored, labels)
    assert b"state rebuilt" in second.stderr


def assert_each_alerted_once(stored: list[dict], labels: list[dict]) -> None:
    """The outage's and the crash's alerts are each stored exactly once."""
    provider = _key(labels, "provider_outage")
    per_key: dict[tuple[str, str], int] = {}
    for a in stored:
        per_key[(a["rule"], a["key"])] = per_key.get((a["rule"], a["key"]), 0) + 1
    for rule_key in [("payment_failures_same_provider", provider), ("provider_error_streak", provider),
                     ("error_log", _key(labels, "service_crash"))]:
        assert per_key.get(rule_key) == 1, (rule_key, per_key)


def _key(labels: list[dict], scenario: str) -> str:
    return next(next(iter(lab["key"].values())) for lab in labels if lab["scenario"] == scenario)


def _iso(ms: int) -> str:
    from fleetlens.simulate.generator import format_ts

    return format_ts(ms)


def test_ingest_falling_behind_raises_ingest_lag(redis_server, redis_client, tmp_path):
    from fleetlens.sources.redis import ensure_group

    ensure_group(redis_client, "fleet.events", "ingest")  # an ingest group that consumes nothing
    events, _ = _payloads((), 60)
    RedisStreamSink(redis_client).send("fleet.events", encode_messages(events, 10))
    rules = RulesConfig()
    rules.ingest_lag.max_messages, rules.ingest_lag.for_s = 100, 0.5
    settings = _settings(redis_server, tmp_path, lag_check_s=0.2, alerts_stream=None)
    raised = []
    Detector(settings, None, rules, sinks=[], on_change=lambda a, c, t: raised.append((a.rule, a.key, c))).run(
        until_idle_s=2)
    assert ("ingest_lag", "ingest", "firing") in raised


def test_the_detector_keeps_going_through_a_redis_restart(tmp_path):
    from fleetlens.sources.redis import connect
    from fleetlens.sources.redis_server import RedisServer, free_port

    port = free_port()
    server = RedisServer(port, tmp_path / "redis", appendfsync="always").start()
    events, labels = _payloads(("service_crash@250+5",), 300)
    half = len(events) // 2
    settings = Settings(data_dir=tmp_path / "data", redis={"url": server.url, "embedded": False},
                        detect={"consumer": "d1", "batch_ms": 50, "alerts_stream": None})
    raised = []
    detector = Detector(settings, None, sinks=[], on_change=lambda a, c, t: raised.append((a.rule, a.key, c)))
    stop = threading.Event()
    runner = threading.Thread(target=detector.run, args=(stop,), daemon=True)
    client = connect(server.url)
    try:
        RedisStreamSink(client).send("fleet.events", encode_messages(events[:half], 50))
        runner.start()
        deadline = time.monotonic() + 60
        while detector.stats.events < half and time.monotonic() < deadline:
            time.sleep(0.1)
        server.kill()  # SIGKILL; every write was fsynced
        time.sleep(2)  # the detector's reads fail meanwhile
        server = RedisServer(port, tmp_path / "redis", appendfsync="always").start()
        client = connect(server.url)
        RedisStreamSink(client).send("fleet.events", encode_messages(events[half:], 50))
        deadline = time.monotonic() + 60
        while detector.stats.events < len(events) and time.monotonic() < deadline:
            time.sleep(0.1)
        expected = ("error_log", _key(labels, "service_crash"), "firing")
        while expected not in raised and time.monotonic() < deadline:  # decoded first, evaluated just after
            time.sleep(0.1)
        assert runner.is_alive() and detector.error is None
        assert detector.stats.events == len(events)
        assert expected in raised
    finally:
        stop.set()
        runner.join(30)
        client.close()
        server.stop()


def test_stopped_during_a_store_outage_the_alert_is_stored_at_the_next_start(redis_server, redis_client, tmp_path):
    """Stopping while the store refuses leaves the micro-batch unacknowledged; the next run stores its alert once."""
    from fleetlens.chaos import storefault

    events, labels = _payloads(("service_crash@60+5", "service_crash@200+5"), 300, seed=5)
    split = next(i for i, e in enumerate(events) if e["ts"] >= _iso(START_MS + 150_000))
    sink = RedisStreamSink(redis_client)
    hook = Receiver()
    settings = _settings(redis_server, tmp_path, webhook_urls=[hook.url + "/hook"], alerts_stream=None)
    store = EmbeddedStore(tmp_path / "chdb", "fleetlens")
    ensure_schema(store)
    try:
        sink.send("fleet.events", encode_messages(events[:split], 50))
        Detector(settings, store, RulesConfig(cooldown_s=30)).run(until_idle_s=1.5)  # the first crash: stored
        first = _alerts(store)
        assert len(first) == 1
        storefault.fail_inserts(store, ("alerts",))
        sink.send("fleet.events", encode_messages(events[split:], 50))
        detector = Detector(settings, store, RulesConfig(cooldown_s=30))
        stop = threading.Event()
        runner = threading.Thread(target=detector.run, args=(stop,), daemon=True)
        runner.start()
        deadline = time.monotonic() + 60
        while len([b for _, b in hook.bodies if b["change"] == "firing"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        stop.set()
        runner.join(10)
        assert not runner.is_alive() and detector.error is None  # stopped promptly, not an error
        assert [a["id"] for a in _alerts(store) if a["status"] == "firing"] == []  # the second crash's row is missing
        storefault.heal(store, ("alerts",))
        Detector(settings, store, RulesConfig(cooldown_s=30)).run(until_idle_s=1.5)
        stored = _alerts(store)
    finally:
        store.close()
        hook.close()
    second = [b["alert"]["id"] for _, b in hook.bodies if b["change"] == "firing"][1]
    assert second in {a["id"] for a in stored}
    assert len(stored) == len({a["id"] for a in stored}) == 2


def test_fleetlens_up_restarts_a_failed_detector(redis_server, redis_client, tmp_path, monkeypatch):
    """A sink error the detector does not wait out (the alert stream's key holds a string: WRONGTYPE) stops
    the detector; the thread of ``fleetlens up`` starts a new one, which re-reads the unacknowledged batch
    and delivers the alert once the key is fixed."""
    from fleetlens.up import _DetectorThread

    monkeypatch.setattr(_DetectorThread, "RESTART_DELAY_S", 0.5)
    events, labels = _payloads(("service_crash@60+5",), 120)
    redis_client.set("fleet.alerts", "not a stream")
    RedisStreamSink(redis_client).send("fleet.events", encode_messages(events, 50))
    settings = _settings(redis_server, tmp_path, alerts_stream="fleet.alerts")
    store = EmbeddedStore(tmp_path / "chdb", "fleetlens")
    ensure_schema(store)
    thread = _DetectorThread(settings, store)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while thread.restarts < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert thread.restarts >= 1 and thread.is_alive()
        redis_client.delete("fleet.alerts")
        crash = _key(labels, "service_crash")
        while not redis_client.exists("fleet.alerts") and time.monotonic() < deadline:
            time.sleep(0.1)
        _wait_consumed(settings, "detect")
        stored = _alerts(store)
    finally:
        thread.stop()
        store.close()
    assert not thread.is_alive()
    assert [(a["rule"], a["key"]) for a in stored] == [("error_log", crash)]
    streamed = [json.loads(f[b"data"]) for _, f in redis_client.xrange("fleet.alerts")]
    assert [m["alert"]["key"] for m in streamed if m["change"] == "firing"] == [crash]
