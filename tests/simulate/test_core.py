"""Determinism, contract validity, batching, run length and rate of the simulator."""

from __future__ import annotations

import threading
import time
from collections import Counter

import orjson
import pytest

from fleetlens.simulate import SimulationConfig, Simulator, encode_messages, generate_payloads, run_simulation
from fleetlens.simulate.sinks import FileSink, ListSink
from tests.simulate.helpers import START_MS, config, contract_problems, run_to_list, simulate, ts_ms

ALL_SCENARIOS = ("provider_outage@5+10", "buy_refund_abuse@5+20", "identical_burst@8+5", "error_spike@10+10",
                 "latency_regression@10+10", "cpu_saturation@5+30")


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = generate_payloads(5000, events_per_message=10, seed=7, start_ms=START_MS, scenarios=())
    b = generate_payloads(5000, events_per_message=10, seed=7, start_ms=START_MS)
    c = generate_payloads(5000, events_per_message=10, seed=8, start_ms=START_MS)
    assert a == b
    assert a != c
    assert len(a) == 500


def test_same_seed_with_scenarios_same_bytes():
    kw = dict(seed=3, duration_s=40, rate=1000, inject=ALL_SCENARIOS)
    first, _ = run_to_list(**kw)
    second, _ = run_to_list(**kw)
    assert first == second


def test_every_event_valid_unique_and_in_time_order():
    events, _ = simulate(seed=11, duration_s=60, rate=1500, services=10, inject=ALL_SCENARIOS)
    assert len(events) > 50_000
    problems = {e["event_id"]: p for e in events if (p := contract_problems(e))}
    assert not problems, list(problems.items())[:5]
    assert len({e["event_id"] for e in events}) == len(events)
    times = [ts_ms(e["ts"]) for e in events]
    assert times == sorted(times)
    assert all(next(iter(e)) == "event_id" for e in events)  # encode_lines relies on it
    kinds = Counter(e["kind"] for e in events)
    assert set(kinds) == {"log", "metric", "business"}
    assert {e["operation"] for e in events if e["kind"] == "business"} == {
        "page_view", "reserve", "cancel_reservation", "buy", "refund", "payment_attempt"}

def test_log_levels_in_realistic_proportions():
    events, _ = simulate(seed=12, count=50_000)
    levels = Counter(e["level"] for e in events if e["kind"] == "log")
    assert levels["info"] > levels["debug"] > levels["warn"] > levels["error"] > 0
    assert levels["error"] / sum(levels.values()) < 0.01
    assert {e["event_type"] for e in events if e["kind"] == "log"} >= {"http_request", "db_query", "payment_call", "exception"}


def test_contract_decoder_accepts_everything():
    decode = pytest.importorskip("fleetlens.contract.decode").decode_payloads
    payloads = generate_payloads(20_000, events_per_message=50, seed=5, start_ms=START_MS)
    decoded = decode(payloads)
    assert not decoded.rejections
    assert decoded.events.num_rows + decoded.metrics.num_rows == 20_000


@pytest.mark.parametrize("per_message", [1, 7, 100])
def test_ndjson_batching(per_message):
    payloads, summary = run_to_list(seed=1, count=1000, events_per_message=per_message)
    lines = [line for p in payloads for line in p.split(b"\n")]
    assert len(lines) == summary.events == 1000
    assert summary.messages == len(payloads) == -(-1000 // per_message)
    assert all(len(p.split(b"\n")) == per_message for p in payloads[:-1])
    assert all(isinstance(orjson.loads(line), dict) for line in lines)


def test_file_sink_writes_one_event_per_line(tmp_path):
    path = tmp_path / "out.ndjson"
    sink = FileSink(path)
    summary = run_simulation(config(seed=2, count=2345, events_per_message=100), sink)
    sink.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == summary.events == 2345
    assert summary.messages == 24


def test_encode_messages_matches_per_event_dumps():
    events = list(Simulator(config(seed=4, count=3000)).events())
    assert encode_messages(events, 1) == [orjson.dumps(e) for e in events]
    assert encode_messages(events, 9) == [b"\n".join(orjson.dumps(e) for e in events[i:i + 9]) for i in range(0, 3000, 9)]


def test_count_is_exact_and_a_prefix_of_the_longer_run():
    short = generate_payloads(1234, events_per_message=1, seed=9, start_ms=START_MS)
    long = generate_payloads(5000, events_per_message=1, seed=9, start_ms=START_MS)
    assert len(short) == 1234
    assert long[:1234] == short


def test_duration_bounds_event_time():
    events, _ = simulate(seed=1, duration_s=30, rate=800)
    times = [ts_ms(e["ts"]) for e in events]
    assert min(times) >= START_MS
    assert max(times) < START_MS + 30_000
    assert max(times) > START_MS + 29_000


@pytest.mark.parametrize("rate", [200.0, 5000.0])
def test_event_time_rate_is_the_asked_rate(rate):
    events, _ = simulate(seed=2, duration_s=120, rate=rate, load_wave_amplitude=0.0)
    assert len(events) / 120 == pytest.approx(rate, rel=0.08)


def test_count_and_duration_whichever_first():
    events, _ = simulate(seed=1, duration_s=5, count=10**9, rate=100)
    assert len(events) < 1000
    events, _ = simulate(seed=1, duration_s=1000, count=300, rate=100)
    assert len(events) == 300


def test_realtime_paces_by_wall_clock():
    sink = ListSink()
    t0 = time.monotonic()
    summary = run_simulation(config(seed=1, duration_s=1.5, rate=1000), sink, realtime=True)
    assert time.monotonic() - t0 >= 1.2
    assert summary.events > 1000


def test_stop_event_ends_an_open_ended_realtime_run():
    sink, stop = ListSink(), threading.Event()
    threading.Timer(0.5, stop.set).start()
    summary = run_simulation(config(seed=1, rate=2000), sink, stream="s", realtime=True, stop=stop)
    assert summary.interrupted
    assert 300 < summary.events < 5000
    assert sum(p.count(b"\n") + 1 for p in sink.payloads["s"]) == summary.events


def test_services_subset_and_extras():
    small, _ = simulate(seed=1, count=5000, services=3)
    assert {e["service"] for e in small if e["kind"] != "metric"} <= {"gateway", "catalog", "cart"}
    big, _ = simulate(seed=1, count=20000, services=9, replicas=3, hosts=6)
    services = {e["service"] for e in big}
    assert {"search", "recommendation", "payment"} <= services
    assert len({e["pod"] for e in big if e.get("pod", "").startswith("payment-")}) == 3
    assert len({e["host"] for e in big}) == 6


def test_config_defaults_from_settings():
    from fleetlens.settings import Settings, SimulateSettings

    cfg = SimulationConfig.from_settings(Settings(simulate=SimulateSettings(seed=5, rate=10.0, users=7, events_per_message=3)), count=4)
    assert (cfg.seed, cfg.rate, cfg.users, cfg.events_per_message, cfg.count) == (5, 10.0, 7, 3, 4)
