"""Purchases across services, payment retries, and metrics that follow the load."""

from __future__ import annotations

import statistics
from collections import defaultdict

from fleetlens.simulate.generator import BACKOFF_MS, MAX_ATTEMPTS
from tests.simulate.helpers import START_MS, simulate, ts_ms

CHECKOUT = {"gateway", "cart", "catalog", "reservation", "order", "payment", "notification"}


def _by_action(events):
    actions = defaultdict(list)
    for e in events:
        if "action_id" in e:
            actions[e["action_id"]].append(e)
    return actions


def test_purchase_flows_share_one_action_id_across_every_service():
    # an outage makes retries and eventual failures frequent enough to check
    events, _ = simulate(seed=21, duration_s=120, rate=2000, inject=["provider_outage:cardgate@30+30"])
    end = START_MS + 120_000
    actions = _by_action(events)
    buys = [e for e in events if e.get("operation") == "buy" and ts_ms(e["ts"]) < end - 20_000]
    assert len(buys) > 300
    outcomes = defaultdict(int)
    retried = 0
    for buy in buys:
        flow = actions[buy["action_id"]]
        assert {e["service"] for e in flow} == CHECKOUT
        assert {e["user_id"] for e in flow} == {buy["user_id"]}
        ops = [e["operation"] for e in flow if e["kind"] == "business"]
        assert ops[0] == "reserve" and ops[-1] == "buy"
        attempts = [e for e in flow if e.get("operation") == "payment_attempt"]
        assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
        assert 1 <= len(attempts) <= MAX_ATTEMPTS
        assert len({a["provider"] for a in attempts}) == 1
        assert attempts[-1]["outcome"] == buy["outcome"]  # the eventual outcome is the buy's
        assert all(a["outcome"] == "failure" and a["error_code"] for a in attempts[:-1])
        for n, (a, b) in enumerate(zip(attempts, attempts[1:]), start=1):
            # the next attempt starts after a backoff of BACKOFF_MS * 2**(n-1) +-20 %
            gap = ts_ms(b["ts"]) - b["duration_ms"] - ts_ms(a["ts"])
            assert gap >= 0.8 * BACKOFF_MS * 2 ** (n - 1) - 2
        reserve = next(e for e in flow if e.get("operation") == "reserve")
        assert buy["amount"] == attempts[-1]["amount"] == reserve["amount"]
        assert buy["order_id"] == reserve["order_id"]
        retried += len(attempts) > 1
        outcomes[buy["outcome"]] += 1
        if buy["outcome"] == "failure":
            assert buy["error_code"] in ("provider_timeout", "provider_503", "card_declined")
    assert retried > 20
    assert outcomes["success"] > outcomes["failure"] > 0


def test_retries_of_normal_traffic_mostly_succeed():
    events, _ = simulate(seed=22, duration_s=300, rate=3000)
    actions = _by_action(events)
    eventual = defaultdict(int)
    for aid, flow in actions.items():
        attempts = [e for e in flow if e.get("operation") == "payment_attempt"]
        if len(attempts) > 1:
            eventual[attempts[-1]["outcome"]] += 1
    assert eventual["success"] > 5 * eventual["failure"]


def test_metrics_follow_the_load():
    # a strong, fast load wave; each host's cpu must move with the events it served
    events, _ = simulate(seed=23, duration_s=600, rate=800, load_wave_amplitude=0.6, load_wave_period_s=200)
    per_tick_load = defaultdict(int)
    for e in events:
        if e["kind"] != "metric" and "action_id" in e:
            per_tick_load[(ts_ms(e["ts"]) - START_MS) // 10_000] += 1
    cpu = defaultdict(list)
    mem = [e["value"] for e in events if e["kind"] == "metric" and e["name"] == "mem_bytes"]
    for e in events:
        if e["kind"] == "metric" and e["name"] == "cpu_percent" and e["service"] == "node-exporter":
            tick = (ts_ms(e["ts"]) - START_MS) // 10_000 - 1  # a sample at t reports the interval before
            cpu[tick].append(e["value"])
    ticks = sorted(t for t in cpu if t in per_tick_load)
    assert len(ticks) > 50
    loads = [per_tick_load[t] for t in ticks]
    cpus = [statistics.mean(cpu[t]) for t in ticks]
    assert statistics.correlation(loads, cpus) > 0.8
    assert max(v for vs in cpu.values() for v in vs) < 90  # the cpu_saturation anomaly is > 95
    assert min(mem) > 0
    names = {(e["name"], e.get("unit")) for e in events if e["kind"] == "metric"}
    assert names == {("cpu_percent", "percent"), ("mem_percent", "percent"), ("mem_bytes", "bytes")}


def test_pods_and_hosts_report_every_interval():
    events, sim = simulate(seed=24, duration_s=61, rate=300)
    samples = defaultdict(int)
    for e in events:
        if e["kind"] == "metric" and e["name"] == "cpu_percent":
            samples[e.get("pod") or e["host"]] += 1
    assert len(samples) == len(sim.fleet.all_pods) + len(sim.fleet.hosts)
    assert set(samples.values()) == {6}  # at 10, 20, ..., 60 s
