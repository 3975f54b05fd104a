"""Decode benchmark: the decoder's events/s by fast path, beside ``orjson.loads`` per line alone.

Builds representative valid events in memory (logs, business events and metrics in fleet-like
proportions, ~300 bytes each, ``ts`` as RFC 3339 text or epoch ms) and times:

* ``batched``: NDJSON messages of ``per_message`` events, decoded ``batch_events`` at a time
  (one ingest read; ingest reads 50k-100k events),
* ``single``: one event per message, the same number of events per decode call,
* the same two over the fleet simulator's real payloads (``simulator_*``), which is what ingest sees,
* ``orjson``: ``orjson.loads`` of every line, the comparison point (parsing only, no checks).

Every case runs with both fast paths (``native``: the Rust extension, the default where built;
``arrow``: Arrow's JSON reader), with wall-clock events/s and the CPU time per event of the
process (both paths use several threads).

``python -m fleetlens.bench.decode`` prints the figures.
"""

from __future__ import annotations

import gc
import random
import time
from typing import Callable

import orjson

from fleetlens.contract import nativepath
from fleetlens.contract.decode import Decoded, decode_payloads_arrow, decode_payloads_native

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
    return _best_wall_and_cpu(repeat, fn)[0]


def _best_wall_and_cpu(repeat: int, fn: Callable[[], object]) -> tuple[float, float]:
    """The fastest of ``repeat`` runs: (wall seconds, process CPU seconds) of that run."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    return best


def _calls(payloads: list[bytes], per_message: int, batch_events: int) -> list[list[bytes]]:
    """Group MQ payloads into decode calls of about ``batch_events`` events (one ingest read)."""
    msgs = max(1, batch_events // per_message)
    return [payloads[i : i + msgs] for i in range(0, len(payloads), msgs)]


FAST_PATHS: dict[str, Callable[[list[bytes]], Decoded]] = {"native": decode_payloads_native, "arrow": decode_payloads_arrow}


def _decode_rate(decode: Callable[[list[bytes]], Decoded], calls: list[list[bytes]], events: int, repeat: int) -> tuple[float, float]:
    """(events/s, CPU µs per event) of decoding ``calls``."""
    def decode_all() -> None:
        n = 0
        for call in calls:
            d = decode(call)
            assert not d.rejections, d.rejections[:1]
            n += d.events.num_rows + d.metrics.num_rows
        assert n == events, (n, events)

    wall, cpu = _best_wall_and_cpu(repeat, decode_all)
    return events / wall, cpu / events * 1e6


def run_decode_bench(events: int = 200_000, per_message: int = 100, batch_events: int = 50_000, repeat: int = 3) -> dict:
    """Time decoding ``events`` events; returns events/s per case and the input size.

    Two inputs: the fleet simulator's real payloads (what ingest sees) and this module's own
    synthetic events (``make_events``: attrs on most logs, ``ts`` half text, half epoch ms). Each
    is decoded as NDJSON messages of ``per_message`` events and as one event per message, in
    calls of ``batch_events`` events.
    """
    from fleetlens.simulate.runner import generate_payloads

    lines = make_events(events)
    sim_batched = generate_payloads(events, events_per_message=per_message, seed=1)
    sim_single = generate_payloads(events, events_per_message=1, seed=1)
    synthetic_batched = [b"\n".join(lines[i : i + per_message]) for i in range(0, events, per_message)]

    def orjson_all() -> None:
        loads = orjson.loads
        for line in lines:
            loads(line)

    inputs = {
        "simulator_batched": _calls(sim_batched, per_message, batch_events),
        "simulator_single": _calls(sim_single, 1, batch_events),
        "batched": _calls(synthetic_batched, per_message, batch_events),
        "single": _calls(lines, 1, batch_events),
    }
    paths = {name: fn for name, fn in FAST_PATHS.items() if name != "native" or nativepath.AVAILABLE}
    result = {
        "events": events,
        "mean_event_bytes": round(sum(map(len, lines)) / events, 1),
        "simulator_mean_event_bytes": round(sum(map(len, sim_single)) / events, 1),
        "per_message": per_message,
        "batch_events": batch_events,
        "paths": list(paths),
    }
    for case, calls in inputs.items():
        for path, decode in paths.items():
            rate, cpu_us = _decode_rate(decode, calls, events, repeat)
            result[f"{path}_{case}_events_per_s"] = round(rate)
            result[f"{path}_{case}_cpu_us_per_event"] = round(cpu_us, 2)
    result["orjson_lines_per_s"] = round(events / _best_of(repeat, orjson_all))
    return result


def print_decode_bench(events: int = 200_000, per_message: int = 100, batch_events: int = 50_000) -> None:
    """Run the benchmark and print a table (and the machine it ran on)."""
    from rich.console import Console
    from rich.table import Table

    from fleetlens.bench.context import RunContext

    context = RunContext()
    r = run_decode_bench(events=events, per_message=per_message, batch_events=batch_events)
    table = Table(
        title=f"fleetlens bench decode ({context.line()}; "
        f"{r['events']:,} events, {r['batch_events']:,} per decode call)"
    )
    for column in ("input", "events per message", "mean event bytes", "fast path", "decode events/s", "CPU µs/event"):
        table.add_column(column, justify="right")
    cases = (
        ("simulator", r["per_message"], r["simulator_mean_event_bytes"], "simulator_batched"),
        ("simulator", 1, r["simulator_mean_event_bytes"], "simulator_single"),
        ("synthetic", r["per_message"], r["mean_event_bytes"], "batched"),
        ("synthetic", 1, r["mean_event_bytes"], "single"),
    )
    for name, per_message_, size, case in cases:
        for path in r["paths"]:
            table.add_row(name, f"{per_message_:,}", f"{size:,.0f}", path, f"{r[f'{path}_{case}_events_per_s']:,}",
                          f"{r[f'{path}_{case}_cpu_us_per_event']:.2f}")
    table.add_row("orjson.loads per line (synthetic)", "1", f"{r['mean_event_bytes']:,.0f}", "", f"{r['orjson_lines_per_s']:,}", "")
    Console().print(table)


def main() -> None:
    """Print the figures of ``run_decode_bench`` with default settings."""
    print_decode_bench()


if __name__ == "__main__":
    main()
