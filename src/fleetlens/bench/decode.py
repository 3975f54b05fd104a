"""Decode benchmark: ``decode_payloads`` events/s beside ``orjson.loads`` per line alone.

Builds representative valid events in memory (logs, business events and metrics in fleet-like
proportions, ~300 bytes each, ``ts`` as RFC 3339 text or epoch ms) and times:

* ``batched``: NDJSON messages of ``per_message`` events, decoded ``batch_events`` at a time
  (one ingest read),
* ``single``: one event per message, the same number of events per decode call,
* ``orjson``: ``orjson.loads`` of every line, the comparison point (parsing only, no checks).

``python -m fleetlens.bench.decode`` prints the figures.
"""

from __future__ import annotations

import gc
import random
import time
from typing import Callable

import orjson

from fleetlens.contract.decode import decode_payloads

_SERVICES = ("checkout", "payment", "orders", "catalog", "gateway", "auth")
_TS0 = 1_795_165_200_000


def make_events(n: int, seed: int = 7) -> list[bytes]:
    """``n`` valid, varied contract events as JSON lines (no terminator)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts_ms = _TS0 + i * 7
        ts = ts_ms if rnd.random() < 0.5 else _iso(ts_ms)
        env = {"event_id": f"ev-{i:09d}-{rnd.getrandbits(32):08x}", "ts": ts, "service": rnd.choice(_SERVICES),
               "host": f"node-{rnd.randrange(12)}", "pod": f"pod-{rnd.randrange(90)}-x7f2k"}
        r = rnd.random()
        if r < 0.6:
            env |= {"kind": "log", "level": rnd.choice(("debug", "info", "info", "warn", "error")),
                    "event_type": rnd.choice(("http_request", "db_query", "payment_call")),
                    "message": "handled GET /api/v1/items/%d in %d ms; cache=%s" % (rnd.randrange(10**5), rnd.randrange(900), rnd.choice(("hit", "miss"))),
                    "action_id": f"act-{rnd.getrandbits(48):012x}", "logger": "app.http",
                    "duration_ms": round(rnd.random() * 300, 3), "attrs": {"route": "/api/v1/items", "status": 200}}
        elif r < 0.85:
            op = rnd.choice(("page_view", "page_view", "reserve", "payment_attempt", "buy"))
            env |= {"kind": "business", "operation": op, "action_id": f"act-{rnd.getrandbits(48):012x}",
                    "user_id": f"u-{rnd.randrange(10**6)}", "session_id": f"s-{rnd.getrandbits(40):010x}",
                    "duration_ms": rnd.randrange(1, 900)}
            if op == "page_view":
                env["page"] = f"/item/{rnd.randrange(10**4)}"
            else:
                env["order_id"] = f"o-{rnd.randrange(10**7)}"
            if op in ("payment_attempt", "buy"):
                env |= {"amount": round(rnd.random() * 200, 2), "currency": "EUR", "outcome": "success"}
            if op == "payment_attempt":
                env |= {"provider": "cardly", "attempt": rnd.randrange(1, 4)}
        else:
            env |= {"kind": "metric", "name": rnd.choice(("cpu_percent", "mem_percent", "mem_bytes")),
                    "value": round(rnd.random() * 100, 2), "unit": "percent", "node": f"k8s-{rnd.randrange(4)}"}
        out.append(orjson.dumps(env))
    return out


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_decode_bench(events: int = 200_000, per_message: int = 100, batch_events: int = 10_000, repeat: int = 3) -> dict:
    """Time decoding ``events`` events; returns events/s per case and the input size."""
    lines = make_events(events)
    batched = [b"\n".join(lines[i : i + per_message]) for i in range(0, events, per_message)]
    msgs_per_call = max(1, batch_events // per_message)
    batched_calls = [batched[i : i + msgs_per_call] for i in range(0, len(batched), msgs_per_call)]
    single_calls = [lines[i : i + batch_events] for i in range(0, events, batch_events)]

    def decode_all(calls):
        n = 0
        for call in calls:
            d = decode_payloads(call)
            assert not d.rejections, d.rejections[:1]
            n += d.events.num_rows + d.metrics.num_rows
        assert n == events

    def orjson_all():
        loads = orjson.loads
        for line in lines:
            loads(line)

    t_batched = _best_of(repeat, lambda: decode_all(batched_calls))
    t_single = _best_of(repeat, lambda: decode_all(single_calls))
    t_orjson = _best_of(repeat, orjson_all)
    return {
        "events": events,
        "mean_event_bytes": round(sum(map(len, lines)) / events, 1),
        "per_message": per_message,
        "batch_events": batch_events,
        "batched_events_per_s": round(events / t_batched),
        "single_events_per_s": round(events / t_single),
        "orjson_lines_per_s": round(events / t_orjson),
    }


def main() -> None:
    """Print the figures of ``run_decode_bench`` with default settings."""
    for key, value in run_decode_bench().items():
        print(f"{key:>22}: {value:,}" if isinstance(value, int) else f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
