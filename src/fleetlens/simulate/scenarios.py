"""Anomaly scenarios: how to ask for one, what each does to the traffic, and its ground-truth label.

A scenario is asked for as ``NAME[:TARGET][@START_S[+DURATION_S]]`` (times in simulated seconds
from the run's start). Each one, once installed in a ``Simulator``, schedules its own actions and
registers its effect for its window (checked against each event's own time); the events it makes or changes are tagged with its
``AnomalyLabel``, which records what was actually emitted (a run cut short by ``count`` or
``duration`` labels only what made it out).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from fleetlens.simulate.generator import Simulator


@dataclass(frozen=True)
class ScenarioKind:
    """What a scenario affects and which alert rules should fire on it."""

    name: str
    key: str  # the label's key field: provider, user_id, service, operation or host
    expected_rules: tuple[str, ...]
    description: str
    # Alerts the anomaly may legitimately cause besides its own (rule, key): not false positives.
    side_effects: tuple[tuple[str, str], ...] = ()


SCENARIOS: dict[str, ScenarioKind] = {
    k.name: k
    for k in (
        ScenarioKind("provider_outage", "provider", ("payment_failures_same_provider", "provider_error_streak"),
                     "one payment provider times out or answers 503 for everyone; several users' retries fail on it",
                     (("error_rate_spike", "payment"), ("error_rate_spike", "order"), ("latency_regression", "buy"),
                      ("latency_regression", "payment_attempt"))),
        ScenarioKind("buy_refund_abuse", "user_id", ("buy_then_refund", "refund_repeat_offender"),
                     "one user buys and refunds again and again (5 cycles over the window)"),
        ScenarioKind("identical_burst", "user_id", ("identical_operation_burst",),
                     "one user reserves the same product 30 times within at most 10 s"),
        ScenarioKind("error_spike", "service", ("error_rate_spike",),
                     "80 % of one service's requests log an error, plus 5 extra failing requests/s"),
        ScenarioKind("latency_regression", "operation", ("latency_regression",),
                     "one business operation's duration_ms is 8x its normal"),
        ScenarioKind("cpu_saturation", "host", ("cpu_saturation",),
                     "one host's cpu_percent stays at 96-99.8 % (its pods 90-99 %)"),
        ScenarioKind("traffic_drop", "operation", ("traffic_drop",),
                     "user traffic falls to 10 % of normal (e.g. a broken front end): few page views"),
        ScenarioKind("service_crash", "service", ("error_log",),
                     "one pod of a service logs a crash (event_type crash) and restarts"),
    )
}

_SPEC_RE = re.compile(r"^(?P<name>[a-z_]+)(?::(?P<target>[^@]+))?(?:@(?P<start>[0-9.]+)(?:\+(?P<dur>[0-9.]+))?)?$")


@dataclass(frozen=True)
class ScenarioSpec:
    """One requested anomaly. None fields take defaults (see ``window`` and the installers)."""

    name: str
    target: str | None = None
    start_s: float | None = None
    duration_s: float | None = None

    @classmethod
    def parse(cls, text: str) -> "ScenarioSpec":
        """``NAME[:TARGET][@START_S[+DURATION_S]]``, e.g. ``provider_outage:payflow@60+120``."""
        m = _SPEC_RE.match(text.strip())
        if not m:
            raise ValueError(f"bad scenario {text!r}: expected NAME[:TARGET][@START_S[+DURATION_S]]")
        if m["name"] not in SCENARIOS:
            raise ValueError(f"unknown scenario {m['name']!r}; known: {', '.join(SCENARIOS)}")
        dur = float(m["dur"]) if m["dur"] else None
        if dur is not None and dur <= 0:
            raise ValueError(f"scenario {text!r}: duration must be > 0")
        return cls(m["name"], m["target"], float(m["start"]) if m["start"] else None, dur)

    def window(self, run_length_s: float) -> tuple[float, float]:
        """(start_s, duration_s): defaults put the anomaly in the second quarter of the run."""
        start = self.start_s if self.start_s is not None else 0.25 * run_length_s
        duration = self.duration_s if self.duration_s is not None else max(1.0, 0.25 * run_length_s)
        return start, duration


class AnomalyLabel:
    """Ground truth of one injected anomaly, filled as its tagged events are emitted."""

    MAX_IDS = 10_000  # lists longer than this are cut (``ids_truncated``)

    def __init__(self, label_id: str, kind: ScenarioKind, key_value: str, start_ms: int, end_ms: int, params: dict[str, Any]):
        self.id = label_id
        self.kind = kind
        self.key_value = key_value
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.params = params
        self.events = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.action_ids: dict[str, None] = {}  # insertion-ordered set
        self.user_ids: dict[str, None] = {}
        self.ids_truncated = False

    def emitted(self, ts_ms: int, event: dict[str, Any]) -> None:
        """Count one tagged event that left the simulator."""
        self.events += 1
        if self.first_ms is None:
            self.first_ms = ts_ms
        self.last_ms = ts_ms
        for ids, value in ((self.action_ids, event.get("action_id")), (self.user_ids, event.get("user_id"))):
            if value is not None and value not in ids:
                if len(ids) < self.MAX_IDS:
                    ids[value] = None
                else:
                    self.ids_truncated = True

    def to_json(self, fmt_ts: Callable[[int], str]) -> dict[str, Any]:
        """The labels-file line (see ``docs/simulator.md``)."""
        return {
            "id": self.id,
            "scenario": self.kind.name,
            "key": {self.kind.key: self.key_value},
            "start": fmt_ts(self.start_ms),
            "end": fmt_ts(self.end_ms),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "first_event_ms": self.first_ms,
            "last_event_ms": self.last_ms,
            "events": self.events,
            "action_ids": list(self.action_ids),
            "user_ids": list(self.user_ids),
            "ids_truncated": self.ids_truncated,
            "expected_rules": list(self.kind.expected_rules),
            "side_effects": [{"rule": r, "key": k} for r, k in self.kind.side_effects],
            "params": self.params,
        }


def _every(sim: "Simulator", start: float, end: float, step: float, action: Callable[[int], None]) -> None:
    """Call ``action`` at start, start+step, ... while before end (one scheduled call at a time)."""
    n = max(1, math.ceil((end - start) / step - 1e-9))

    def tick(i: int) -> None:
        def run(t: int) -> None:
            action(t)
            if i + 1 < n:
                tick(i + 1)

        sim.schedule(start + i * step, run)

    tick(0)


def _choose(rng: random.Random, what: str, target: str | None, options: list[str]) -> str:
    if target is None:
        return rng.choice(options)
    if target not in options:
        raise ValueError(f"unknown {what} {target!r}; this fleet has: {', '.join(options)}")
    return target


def install(sim: "Simulator", spec: ScenarioSpec, index: int, run_length_s: float) -> AnomalyLabel:
    """Make ``spec`` happen in ``sim``; returns the label its tagged events fill."""
    kind = SCENARIOS[spec.name]
    rng = random.Random(f"{sim.config.seed}:{spec.name}:{index}")  # targets do not depend on traffic
    start_s, dur_s = spec.window(run_length_s)
    start = sim.start_ms + int(start_s * 1000)
    end = start + int(dur_s * 1000)
    fleet = sim.fleet
    name = spec.name
    params: dict[str, Any] = {}

    if name == "provider_outage":
        key = _choose(rng, "provider", spec.target, [p.name for p in fleet.providers])
        label = AnomalyLabel(f"{name}-{index}", kind, key, start, end, params)
        sim.outages.append((key, start, end, label))
        extra = params["extra_purchases"] = 8  # so several users hit it even at a low rate
        _every(sim, start, end, (end - start) / extra, lambda t: sim.purchase(t, sim.pick_user(), label, provider=key))
    elif name in ("buy_refund_abuse", "identical_burst"):
        user = sim.take_user(spec.target)
        key = user.id
        label = AnomalyLabel(f"{name}-{index}", kind, key, start, end, params)
        if name == "buy_refund_abuse":
            cycles = params["cycles"] = 5
            gap = (end - start) / cycles
            refund_after = params["refund_after_ms"] = int(min(20_000, 0.4 * gap))

            def cycle(t: int) -> None:
                done = sim.purchase(t, user, label, force_success=True)
                sim.schedule(done["bought_ms"] + refund_after, lambda t2: sim.refund(t2, user, label, order=done))

            _every(sim, start, end, gap, cycle)
        else:
            repeats = params["repeats"] = 30
            span = min(end - start, 10_000)
            product = fleet.products[rng.randrange(len(fleet.products))]
            qty = params["quantity"] = 1 + rng.randrange(3)
            params["product"] = product[0]
            params["operation"] = "reserve"
            _every(sim, start, start + span, span / repeats, lambda t: sim.reserve(t, user, label, product=product, qty=qty))
    elif name == "error_spike":
        key = _choose(rng, "service", spec.target, list(fleet.services))
        label = AnomalyLabel(f"{name}-{index}", kind, key, start, end, params)
        share = params["failing_share"] = 0.8
        extra_per_s = params["extra_failing_requests_per_s"] = 5
        sim.error_boost.setdefault(key, []).append((start, end, share, label))
        _every(sim, start, end, 1000 / extra_per_s, lambda t: sim.failed_request(t, key, label))
    elif name == "latency_regression":
        key = _choose(rng, "operation", spec.target, ["page_view", "reserve", "buy"] if spec.target is None
                      else ["page_view", "reserve", "cancel_reservation", "buy", "refund", "payment_attempt"])
        label = AnomalyLabel(f"{name}-{index}", kind, key, start, end, params)
        factor = params["factor"] = 8.0
        sim.latency.setdefault(key, []).append((start, end, factor, label))
    elif name == "cpu_saturation":
        key = _choose(rng, "host", spec.target, [h.name for h in fleet.hosts])
        label = AnomalyLabel(f"{name}-{index}", kind, key, start, end, params)
        params["metrics_interval_s"] = sim.config.metrics_interval_s
        sim.cpu_pinned.setdefault(key, []).append((start, end, 1.0, label))
    elif name == "traffic_drop":
        key = "page_view"
        label = AnomalyLabel(f"{name}-{index}", kind, key, start, end, params)
        share = params["traffic_share"] = 0.1
        sim.traffic_drop.append((start, end, share, label))
    elif name == "service_crash":
        key = _choose(rng, "service", spec.target, list(fleet.services))
        label = AnomalyLabel(f"{name}-{index}", kind, key, start, end, params)
        sim.schedule(start, lambda t: sim.crash(t, key, label))
    else:  # pragma: no cover - SCENARIOS and this function list the same names
        raise AssertionError(name)
    return label
