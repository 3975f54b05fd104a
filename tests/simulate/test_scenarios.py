"""Each injected anomaly is in the output, its label says exactly what was emitted, and normal
traffic stays clear of every anomaly by the documented margins."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict

import orjson
import pytest

from fleetlens.simulate import ScenarioSpec
from tests.simulate.helpers import START_MS, run_to_list, simulate, ts_ms

S = 1000  # ms


def _in(e, label):
    return label["start_ms"] <= ts_ms(e["ts"]) < label["end_ms"]


def _only_label(sim, name):
    labels = sim.labels()
    assert [lab["scenario"] for lab in labels] == [name]
    return labels[0]


def _check_label_ids(label, events, tagged):
    """The label lists the action/user ids of exactly the tagged events, and counts them."""
    assert label["events"] == len(tagged)
    assert label["action_ids"] == list(dict.fromkeys(e["action_id"] for e in tagged if "action_id" in e))
    assert label["user_ids"] == list(dict.fromkeys(e["user_id"] for e in tagged if "user_id" in e))
    if tagged:
        assert label["first_event_ms"] == ts_ms(tagged[0]["ts"])
        assert label["last_event_ms"] == ts_ms(tagged[-1]["ts"])


def test_provider_outage():
    events, sim = simulate(seed=31, duration_s=180, rate=1500, inject=["provider_outage:paynova@60+60"])
    label = _only_label(sim, "provider_outage")
    assert label["key"] == {"provider": "paynova"}
    assert label["expected_rules"] == ["payment_failures_same_provider", "provider_error_streak"]
    attempts = [e for e in events if e.get("operation") == "payment_attempt"]
    # an attempt's start is its ts minus its (rounded) duration
    down = [a for a in attempts if a["provider"] == "paynova"
            and label["start_ms"] <= math.ceil(ts_ms(a["ts"]) - a["duration_ms"]) < label["end_ms"]]
    assert all(a["outcome"] == "failure" and a["error_code"] in ("provider_timeout", "provider_503") for a in down)
    failed_users = {a["user_id"] for a in down}
    assert len(failed_users) >= 5
    # several users' retries fail on the same provider
    assert sum(1 for a in down if a["attempt"] > 1) >= 5
    # tagged: the attempts it failed and the buys of those purchases (a retry after the window may succeed)
    outage_actions = {a["action_id"] for a in down}
    tagged = [e for e in events if e.get("action_id") in outage_actions and (e in down or e.get("operation") == "buy")]
    _check_label_ids(label, events, tagged)
    # other providers keep working meanwhile
    others = [a for a in attempts if a["provider"] != "paynova" and _in(a, label)]
    assert sum(a["outcome"] == "failure" for a in others) / len(others) < 0.1


def test_buy_refund_abuse():
    events, sim = simulate(seed=32, duration_s=200, rate=1000, inject=["buy_refund_abuse@20+100"])
    label = _only_label(sim, "buy_refund_abuse")
    user = label["key"]["user_id"]
    mine = [e for e in events if e.get("user_id") == user and e["kind"] == "business"]
    buys = [e for e in mine if e["operation"] == "buy"]
    refunds = [e for e in mine if e["operation"] == "refund"]
    assert len(buys) == len(refunds) == 5
    assert all(b["outcome"] == "success" for b in buys)
    assert [r["order_id"] for r in refunds] == [b["order_id"] for b in buys]
    for b, r in zip(buys, refunds):
        assert 0 < ts_ms(r["ts"]) - ts_ms(b["ts"]) <= 21 * S
    _check_label_ids(label, events, [e for e in mine if e["operation"] in ("buy", "refund")])
    assert label["user_ids"] == [user]
    assert label["expected_rules"] == ["buy_then_refund", "refund_repeat_offender"]


def test_identical_burst():
    events, sim = simulate(seed=33, duration_s=60, rate=1000, inject=["identical_burst:u000007@20+30"])
    label = _only_label(sim, "identical_burst")
    assert label["key"] == {"user_id": "u000007"}
    reserves = [e for e in events if e.get("user_id") == "u000007" and e.get("operation") == "reserve"]
    assert len(reserves) == 30
    assert len({(r["amount"], r["currency"]) for r in reserves}) == 1
    assert ts_ms(reserves[-1]["ts"]) - ts_ms(reserves[0]["ts"]) <= 10.5 * S
    assert len({r["action_id"] for r in reserves}) == 30
    _check_label_ids(label, events, reserves)
    assert label["expected_rules"] == ["identical_operation_burst"]


def test_error_spike():
    events, sim = simulate(seed=34, duration_s=180, rate=1500, inject=["error_spike:reservation@60+60"])
    label = _only_label(sim, "error_spike")
    logs = [e for e in events if e["kind"] == "log" and e["service"] == "reservation"]
    inside = [e for e in logs if _in(e, label)]
    outside = [e for e in logs if not _in(e, label)]
    share = lambda xs: sum(e["level"] == "error" for e in xs) / len(xs)  # noqa: E731
    assert share(inside) > 0.15
    assert share(outside) < 0.02
    assert share(inside) > 8 * share(outside)
    errors_inside = [e for e in inside if e["level"] == "error"]
    assert label["events"] >= 0.8 * len(errors_inside)
    # a failing request logs its error when it gives up, up to seconds after the window
    assert set(label["action_ids"]) <= {e["action_id"] for e in logs if e["level"] == "error"}
    assert label["start_ms"] <= label["first_event_ms"] and label["last_event_ms"] < label["end_ms"] + 6 * S
    assert label["expected_rules"] == ["error_rate_spike"]


def test_latency_regression():
    events, sim = simulate(seed=35, duration_s=180, rate=1500, inject=["latency_regression:reserve@60+60"])
    label = _only_label(sim, "latency_regression")
    ops = [e for e in events if e.get("operation") == "reserve"]
    inside = [e["duration_ms"] for e in ops if _in(e, label)]
    outside = [e["duration_ms"] for e in ops if not _in(e, label)]
    assert statistics.median(inside) > 5 * statistics.median(outside)
    assert label["events"] == pytest.approx(len(inside), rel=0.02)
    assert label["expected_rules"] == ["latency_regression"]
    assert label["key"] == {"operation": "reserve"}


def test_cpu_saturation():
    events, sim = simulate(seed=36, duration_s=180, rate=500, inject=["cpu_saturation@60+60"])
    label = _only_label(sim, "cpu_saturation")
    host = label["key"]["host"]
    cpu = [e for e in events if e["kind"] == "metric" and e["name"] == "cpu_percent" and e["service"] == "node-exporter"
           and e["host"] == host]
    inside = [e for e in cpu if _in(e, label)]
    assert len(inside) == 6
    assert all(e["value"] > 95 for e in inside)
    assert all(e["value"] < 90 for e in cpu if not _in(e, label))  # the anomaly is > 95
    _check_label_ids(label, events, inside)
    assert label["expected_rules"] == ["cpu_saturation"]


def test_labels_file_matches_the_run(tmp_path):
    path = tmp_path / "labels.jsonl"
    inject = ["provider_outage@20+20", "buy_refund_abuse@10+50", "identical_burst@30+5", "error_spike@40+10",
              "latency_regression:buy@40+20", "cpu_saturation@50+25", "error_spike@500+10"]
    payloads, summary = run_to_list(labels_path=path, seed=37, duration_s=90, rate=1200, events_per_message=50, inject=inject)
    labels = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [lab["id"] for lab in labels] == summary.scenarios == [f"{s.split('@')[0].split(':')[0]}-{i}" for i, s in enumerate(inject[:-1])]
    assert summary.skipped_scenarios == ["error_spike-6"]  # its window is after the run's end
    emitted = [orjson.loads(line) for p in payloads for line in p.split(b"\n")]
    actions, users = {e.get("action_id") for e in emitted}, {e.get("user_id") for e in emitted}
    for lab in labels:
        assert lab["events"] > 0
        assert set(lab["action_ids"]) <= actions and set(lab["user_ids"]) <= users
        assert set(lab) >= {"scenario", "key", "start", "end", "action_ids", "user_ids", "expected_rules"}
        assert ts_ms(lab["start"]) == lab["start_ms"] and ts_ms(lab["end"]) == lab["end_ms"]


def test_default_windows_fall_in_the_run():
    _, sim = simulate(seed=38, count=60_000, rate=1000, inject=list(ScenarioSpec.parse(n).name for n in
                                                                   ("provider_outage", "identical_burst", "error_spike")))
    labels = sim.labels()
    assert len(labels) == 3
    for lab in labels:  # second quarter of the expected 60 s
        assert (lab["start_ms"] - START_MS, lab["end_ms"] - START_MS) == (15_000, 30_000)


@pytest.mark.parametrize("text", ["nope", "provider_outage@x", "cpu_saturation@1+0", "error_spike:@1"])
def test_bad_scenario_specs(text):
    with pytest.raises(ValueError):
        ScenarioSpec.parse(text)


def test_unknown_target_is_refused():
    with pytest.raises(ValueError, match="provider"):
        simulate(seed=1, count=10, inject=["provider_outage:nobank"])


def test_normal_traffic_stays_clear_of_every_anomaly():
    """The margins docs/simulator.md promises, on 10 minutes of normal traffic at 3000 events/s."""
    events, sim = simulate(seed=39, duration_s=600, rate=3000)
    minute = lambda e: (ts_ms(e["ts"]) - START_MS) // 60_000  # noqa: E731
    # provider failures: per provider and minute, at most 10 % of attempts fail (outage: ~100 %)
    attempts = defaultdict(lambda: [0, 0])
    for e in events:
        if e.get("operation") == "payment_attempt":
            cell = attempts[(e["provider"], minute(e))]
            cell[0] += 1
            cell[1] += e["outcome"] == "failure"
    assert max(f / n for n, f in attempts.values() if n >= 20) < 0.10
    # buy then refund: no user refunds more than once an hour (abuse: 5 in the window)
    refunds = Counter(e["user_id"] for e in events if e.get("operation") == "refund")
    assert refunds and max(refunds.values()) == 1
    # identical operations: no user reserves the same thing 4+ times within 10 s (burst: 30)
    same = defaultdict(list)
    for e in events:
        if e.get("operation") == "reserve":
            same[(e["user_id"], e["amount"])].append(ts_ms(e["ts"]))
    worst = max(sum(1 for u in ts if t <= u < t + 10_000) for ts in same.values() for t in ts)
    assert worst <= 3
    # error share per service and minute stays under 5 % (spike: > 20 %)
    logs = defaultdict(lambda: [0, 0])
    for e in events:
        if e["kind"] == "log":
            cell = logs[(e["service"], minute(e))]
            cell[0] += 1
            cell[1] += e["level"] == "error"
    assert max(err / n for n, err in logs.values() if n >= 100) < 0.05
    # latency: per operation and minute, the median stays within 2x of the run's median (regression: 8x)
    durations = defaultdict(list)
    for e in events:
        if e["kind"] == "business" and e["operation"] != "payment_attempt":
            durations[e["operation"]].append((minute(e), e["duration_ms"]))
    for op, rows in durations.items():
        overall = statistics.median(d for _, d in rows)
        by_minute = defaultdict(list)
        for m, d in rows:
            by_minute[m].append(d)
        assert all(statistics.median(ds) < 2 * overall for ds in by_minute.values() if len(ds) >= 30), op
    # cpu never above the normal cap (saturation: > 95 %)
    assert max(e["value"] for e in events if e.get("name") == "cpu_percent") < 90  # the cpu_saturation anomaly is > 95
