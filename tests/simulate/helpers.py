"""Shared helpers of the simulator tests: an independent contract check and small runners."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from fleetlens.simulate import ListSink, ScenarioSpec, SimulationConfig, Simulator, run_simulation

START = "2026-11-22T10:00:00Z"
START_MS = int(datetime.fromisoformat(START.replace("Z", "+00:00")).timestamp() * 1000)

_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_ENVELOPE = {"event_id": str, "ts": str, "kind": str, "service": str}
_OPTIONAL = {"app": str, "host": str, "pod": str, "container": str, "node": str, "action_id": str, "logger": str,
             "source_file": str, "line": int, "user_id": str, "session_id": str, "page": str, "order_id": str,
             "currency": str, "provider": str, "attempt": int, "outcome": str, "error_code": str, "unit": str,
             "level": str, "event_type": str, "message": str, "operation": str, "name": str}
_NUMBERS = ("duration_ms", "amount", "value")
_REQUIRED_BY_OP = {
    "page_view": ("page",),
    "reserve": ("order_id",),
    "cancel_reservation": ("order_id",),
    "buy": ("order_id", "amount", "outcome"),
    "refund": ("order_id", "amount", "outcome"),
    "payment_attempt": ("amount", "provider", "attempt", "outcome"),
}


def ts_ms(ts: str) -> int:
    """Epoch ms of a contract RFC 3339 timestamp."""
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


def contract_problems(ev: dict[str, Any]) -> list[str]:
    """Everything wrong with one event under contract v1 (empty when valid)."""
    bad: list[str] = []
    for key, typ in _ENVELOPE.items():
        if not isinstance(ev.get(key), typ) or not ev.get(key):
            bad.append(f"{key} missing or not a non-empty {typ.__name__}")
    if not bad and not (1 <= len(ev["event_id"]) <= 64):
        bad.append("event_id length")
    if isinstance(ev.get("ts"), str) and not _TS_RE.match(ev["ts"]):
        bad.append("ts format")
    for key, typ in _OPTIONAL.items():
        if key in ev and (not isinstance(ev[key], typ) or isinstance(ev[key], bool)):
            bad.append(f"{key} type")
    for key in _NUMBERS:
        if key in ev and (isinstance(ev[key], bool) or not isinstance(ev[key], (int, float))):
            bad.append(f"{key} not a number")
        elif key in ("duration_ms", "amount") and key in ev and ev[key] < 0:
            bad.append(f"{key} negative")
    kind = ev.get("kind")
    if kind == "log":
        if ev.get("level") not in ("debug", "info", "warn", "error"):
            bad.append("level")
        for key in ("event_type", "message"):
            if not isinstance(ev.get(key), str):
                bad.append(key)
    elif kind == "business":
        op = ev.get("operation")
        if op not in _REQUIRED_BY_OP:
            bad.append("operation")
        else:
            for key in ("action_id", "user_id", *_REQUIRED_BY_OP[op]):
                if key not in ev:
                    bad.append(f"{op} without {key}")
        if "amount" in ev and not re.fullmatch(r"[A-Z]{3}", ev.get("currency", "")):
            bad.append("currency")
        if "outcome" in ev and ev["outcome"] not in ("success", "failure"):
            bad.append("outcome")
        if "attempt" in ev and ev["attempt"] < 1:
            bad.append("attempt")
    elif kind == "metric":
        if not isinstance(ev.get("name"), str) or "value" not in ev:
            bad.append("metric name/value")
    else:
        bad.append("kind")
    return bad


def config(**kw: Any) -> SimulationConfig:
    """A config with the fixed test start; ``inject`` takes scenario strings."""
    inject = kw.pop("inject", ())
    kw.setdefault("start_ms", START_MS)
    return SimulationConfig(scenarios=tuple(ScenarioSpec.parse(s) for s in inject), **kw)


def simulate(**kw: Any) -> tuple[list[dict[str, Any]], Simulator]:
    """All events of a run (as decoded from the encoded payloads) and its simulator."""
    sim = Simulator(config(**kw))
    events = [orjson.loads(orjson.dumps(e)) for e in sim.events()]
    return events, sim


def run_to_list(labels_path: Any = None, **kw: Any):
    """run_simulation into a ListSink: (payloads, summary)."""
    sink = ListSink()
    summary = run_simulation(config(**kw), sink, stream="s", labels_path=labels_path)
    return sink.payloads.get("s", []), summary
