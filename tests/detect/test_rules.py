"""The rules against ground truth: precision and recall on every scenario, silence on clean traffic, order independence."""

from __future__ import annotations

import random

import pyarrow as pa

from fleetlens.detect.config import RulesConfig
from fleetlens.detect.evaluate import score
from fleetlens.simulate.scenarios import SCENARIOS
from tests.detect.conftest import detect, in_order_chunks


def test_every_rule_finds_its_scenario_precisely(mixed_run, mixed_alerts):
    alerts = mixed_alerts
    scores = score(alerts, mixed_run.labels)
    expected_rules = {r for kind in SCENARIOS.values() for r in kind.expected_rules}
    assert {lab["scenario"] for lab in mixed_run.labels} == set(SCENARIOS)
    report = {r: (s.precision, s.recall, s.false_alerts, s.missed) for r, s in scores.items()}
    for rule in expected_rules:
        s = scores[rule]
        assert s.expected >= 1, rule
        assert s.recall >= 0.95, (rule, report)
        assert s.precision >= 0.95, (rule, report)
    # Every alert is explained by a label (its own rule or a listed side effect).
    assert all(not s.false_alerts for s in scores.values()), report


def test_clean_traffic_raises_nothing(clean_run):
    alerts = detect(in_order_chunks(clean_run))
    assert alerts == []


def test_each_window_alerts_once(mixed_alerts):
    alerts = mixed_alerts
    per_key = {}
    for a in alerts:
        per_key[(a.rule, a.key)] = per_key.get((a.rule, a.key), 0) + 1
    # One episode per injected anomaly and rule: hits of overlapping windows continue one alert.
    for rule in ("payment_failures_same_provider", "buy_then_refund", "identical_operation_burst", "error_log",
                 "traffic_drop", "cpu_saturation"):
        assert [n for (r, _k), n in per_key.items() if r == rule] == [1], (rule, per_key)
    # An alert resolves once the watermark is a cooldown past its last hit; the last minutes' stay firing.
    from tests.detect.conftest import RUN_S, START_MS

    rules = RulesConfig()
    cooldown_ms, lateness_ms = int(rules.cooldown_s * 1000), int(rules.allowed_lateness_s * 1000)
    final_watermark = START_MS + RUN_S * 1000 - lateness_ms  # about: the last event is just before the run's end
    for a in alerts:
        if a.ts_end + cooldown_ms < final_watermark - 5_000:
            assert a.status == "resolved", a
        elif a.ts_end + cooldown_ms > final_watermark + 5_000:
            assert a.status == "firing", a


def _shuffled(run, seed: int = 5, jitter_ms: int = 4000) -> list[tuple[pa.Table, pa.Table, str]]:
    """Events delivered out of order: two partitions, each batch's rows permuted, partitions interleaved."""
    rng = random.Random(seed)
    chunks = in_order_chunks(run, seconds=jitter_ms / 1000)
    out = []
    for events, metrics, _ in chunks:
        for part in (0, 1):
            ev = events.filter(pa.array([(i % 2) == part for i in range(events.num_rows)]))
            idx = list(range(ev.num_rows))
            rng.shuffle(idx)
            out.append((ev.take(pa.array(idx, pa.int64())), metrics if part == 0 else metrics.slice(0, 0), f"p{part}"))
    # swap neighbouring batches now and then: a partition runs a batch ahead of the other
    for i in range(0, len(out) - 2, 7):
        out[i], out[i + 2] = out[i + 2], out[i]
    return out


def test_out_of_order_within_lateness_gives_the_same_alerts(mixed_run, mixed_alerts):
    in_order = mixed_alerts
    shuffled = detect(_shuffled(mixed_run))
    assert {(a.rule, a.key, a.id) for a in shuffled} == {(a.rule, a.key, a.id) for a in in_order}


def test_events_beyond_the_lateness_are_counted_not_used(mixed_run):
    from fleetlens.detect.engine import Engine

    engine = Engine(RulesConfig())
    chunks = in_order_chunks(mixed_run)
    for events, metrics, p in chunks[:200]:
        engine.process_arrow(events, metrics, p)
    stale = chunks[10]  # 380 s older than the watermark now
    engine.process_arrow(*stale)
    assert engine.stats.late == stale[0].num_rows + stale[1].num_rows
