"""``fleetlens bench detect``: detector throughput (pre-decoded, one core; end to end from the MQ) and alert latency.

1. **Rules on pre-decoded batches**: simulated traffic with every scenario, decoded once, then run
   through the engine (all rules) in micro-batches — in a child process limited to one Polars
   thread (``POLARS_MAX_THREADS=1``), and in this process with every thread.
2. **End to end from the MQ**: the same payloads in a fresh Redis-protocol server, drained by the
   detector (read, decode, rules, acknowledge), beside a raw ``XREADGROUP`` + ``XACK`` loop.
3. **Alert latency**: with the simulator writing live traffic, an instant-rule trigger (an
   ``error`` log of event_type ``crash``) and a windowed-rule trigger (three users' retries failing
   on one provider) are written again and again; latency is from just before the MQ write of the
   triggering message to the moment the alert sink received the alert. Count rules fire once the
   crossing event is final (the allowed lateness after it), well before the window closes.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import pyarrow as pa

from fleetlens.contract.decode import ARROW, FAST_PATH, NATIVE, decode_payloads, fast_path
from fleetlens.settings import Settings
from fleetlens.simulate.runner import generate_payloads

SCENARIOS = ("provider_outage@60+60", "identical_burst@150+10", "error_spike@200+60", "cpu_saturation@300+120",
             "service_crash@400+5")


def _read(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _write(table: pa.Table, path: Path) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def engine_rate(workdir: Path, batch: int, rounds: int) -> float:
    """Events/s of the engine (all rules) over the tables saved in ``workdir``, median of ``rounds``."""
    from fleetlens.detect.config import RulesConfig
    from fleetlens.detect.engine import Engine

    events, metrics = _read(workdir / "events.arrow"), _read(workdir / "metrics.arrow")
    total = events.num_rows + metrics.num_rows
    share = metrics.num_rows / max(1, events.num_rows)
    rates = []
    for _ in range(rounds):
        engine = Engine(RulesConfig())
        started = time.perf_counter()
        for i in range(0, events.num_rows, batch):
            engine.process_arrow(events.slice(i, batch), metrics.slice(int(i * share), int(batch * share) + 1), "p")
        rates.append(total / (time.perf_counter() - started))
    return statistics.median(rates)


def engine_throughput(events: int, batch: int, rounds: int, workdir: Path) -> dict[str, float]:
    """Engine events/s on pre-decoded tables: one Polars thread (a child process) and all threads (here)."""
    decoded = decode_payloads(generate_payloads(events, 100, rate=2000, scenarios=_specs()))
    _write(decoded.events.combine_chunks(), workdir / "events.arrow")
    _write(decoded.metrics.combine_chunks(), workdir / "metrics.arrow")
    code = f"from pathlib import Path; from fleetlens.bench.detect import engine_rate; print(engine_rate(Path({str(workdir)!r}), {batch}, {rounds}))"
    child = subprocess.run([sys.executable, "-c", code], env={**os.environ, "POLARS_MAX_THREADS": "1"},
                           capture_output=True, text=True, timeout=1200, check=True)
    return {"events": decoded.events.num_rows + decoded.metrics.num_rows,
            "one_core_events_per_s": float(child.stdout.strip().splitlines()[-1]),
            "all_threads_events_per_s": engine_rate(workdir, batch, rounds)}


def _specs():
    from fleetlens.simulate.scenarios import ScenarioSpec

    return tuple(ScenarioSpec.parse(s) for s in SCENARIOS)


def end_to_end(events: int, rounds: int, workdir: Path, compare_arrow: bool = True) -> dict[str, float]:
    """Detector events/s draining a Redis stream (decode + rules + ack) beside the raw read loop.

    With ``compare_arrow`` (and the native decoder built), every round also drains the stream with
    the decoder's Arrow fast path, the native one's comparison point.
    """
    from fleetlens.bench.ingest import _raw_consume
    from fleetlens.detect.runner import Detector
    from fleetlens.sources.redis import RedisStreamSink, connect
    from fleetlens.sources.redis_server import RedisServer, free_port

    compare_arrow = compare_arrow and FAST_PATH == NATIVE
    payloads = generate_payloads(events, 100, rate=2000, scenarios=_specs())
    server = RedisServer(free_port(), workdir / "redis").start()

    def drain(group: str) -> float:
        settings = Settings(data_dir=workdir / "data", redis={"url": server.url, "embedded": False},
                            detect={"group": group, "replay": False, "alerts_stream": None})
        detector = Detector(settings, None, sinks=[])
        stop = threading.Event()
        thread = threading.Thread(target=detector.run, args=(stop,))
        started = time.perf_counter()
        thread.start()
        while detector.stats.events < events and thread.is_alive():
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        stop.set()
        thread.join()
        return events / elapsed

    try:
        client = connect(server.url)
        RedisStreamSink(client).send("fleet.events", payloads)
        detector_rates, raw_rates, arrow_rates = [], [], []
        for r in range(rounds):
            raw_s = _raw_consume(client, "fleet.events", f"raw-{r}", len(payloads), 250)
            raw_rates.append(events / raw_s)
            detector_rates.append(drain(f"detect-{r}"))
            if compare_arrow:
                with fast_path(ARROW):
                    arrow_rates.append(drain(f"detect-arrow-{r}"))
        client.close()
    finally:
        server.stop()
    result = {"events": events, "decoder": FAST_PATH, "detector_events_per_s": statistics.median(detector_rates),
              "raw_events_per_s": statistics.median(raw_rates)}
    if arrow_rates:
        result["arrow_detector_events_per_s"] = statistics.median(arrow_rates)
    return result


def alert_latency(samples: int, workdir: Path, rate: float = 2000.0) -> dict[str, dict[str, float]]:
    """Seconds from the MQ write of a triggering message to the alert, p50/p99, instant and windowed."""
    from fleetlens.detect.runner import Detector
    from fleetlens.simulate.config import SimulationConfig
    from fleetlens.simulate.runner import run_simulation
    from fleetlens.sources.redis import RedisStreamSink, connect
    from fleetlens.sources.redis_server import RedisServer, free_port

    server = RedisServer(free_port(), workdir / "redis-latency").start()
    got: dict[str, float] = {}
    arrived = threading.Condition()

    def on_change(alert, change, at):
        if change == "firing":
            with arrived:
                got[alert.key] = at
                arrived.notify_all()

    try:
        settings = Settings(data_dir=workdir / "data2", redis={"url": server.url, "embedded": False},
                            detect={"replay": False, "alerts_stream": None, "batch_ms": 50})
        client = connect(server.url)
        sink = RedisStreamSink(client)
        stop = threading.Event()
        traffic = threading.Thread(target=run_simulation, kwargs=dict(
            config=SimulationConfig(seed=5, rate=rate, events_per_message=20), sink=RedisStreamSink(connect(server.url)),
            realtime=True, stop=stop), daemon=True)
        traffic.start()
        detector = Detector(settings, None, sinks=[], on_change=on_change)
        runner = threading.Thread(target=detector.run, args=(stop,), daemon=True)
        runner.start()
        time.sleep(3.0)  # the detector is consuming the live traffic
        result = {}
        for name, make in (("instant (error_log)", _crash), ("windowed (payment_failures_same_provider)", _failures)):
            latencies = []
            for i in range(samples):
                key, payload = make(i)
                t0 = time.time()
                sink.send("fleet.events", [payload])
                with arrived:
                    arrived.wait_for(lambda: key in got, timeout=settings.detect.idle_s + 30)
                if key in got:
                    latencies.append(got[key] - t0)
                time.sleep(0.2)
            latencies.sort()
            result[name] = {"samples": len(latencies), "p50_s": _q(latencies, 0.5), "p99_s": _q(latencies, 0.99),
                            "missed": samples - len(latencies)}
            if name.startswith("windowed"):
                # count rules fire once the crossing event is final (watermark = newest - allowed lateness);
                # the window itself closes `window_s` later still
                lateness = detector.rules.allowed_lateness_s
                result[name] |= {"allowed_lateness_s": lateness, "p99_after_final_s": _q(latencies, 0.99) - lateness,
                                 "window_s": detector.rules.payment_failures_same_provider.window_s}
        stop.set()
        runner.join(timeout=30)
        client.close()
    finally:
        server.stop()
    return result


def _q(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _crash(i: int) -> tuple[str, bytes]:
    key = f"bench-svc-{i}"
    return key, orjson.dumps({"event_id": f"bench-crash-{i}-{_now_ms()}", "ts": _now_ms(), "kind": "log", "service": key,
                              "level": "error", "event_type": "crash", "message": "process exited: OOMKilled"})


def _failures(i: int) -> tuple[str, bytes]:
    key = f"bench-provider-{i}"
    now = _now_ms()
    lines = [orjson.dumps({"event_id": f"bench-pf-{i}-{u}-{a}-{now}", "ts": now, "kind": "business", "service": "payment",
                           "operation": "payment_attempt", "action_id": f"bench-a-{i}-{u}", "user_id": f"bench-u-{u}",
                           "amount": 10.0, "currency": "EUR", "provider": key, "attempt": a, "outcome": "failure",
                           "error_code": "provider_timeout"})
             for u in range(3) for a in (1, 2)]
    return key, b"\n".join(lines)


def print_detect_bench(events: int, e2e_events: int, batch: int, rounds: int, samples: int) -> None:
    """Run the three parts and print the figures (and JSON for docs/benchmarks.md)."""
    from rich.console import Console

    from fleetlens.bench.context import RunContext

    console = Console()
    context = RunContext()
    with tempfile.TemporaryDirectory(prefix="fleetlens-bench-detect-") as tmp:
        work = Path(tmp)
        console.print(f"[bold]rules on pre-decoded batches[/] ({events:,} simulated events, batches of {batch:,})…")
        engine = engine_throughput(events, batch, rounds, work)
        console.print(f"  one core: {engine['one_core_events_per_s']:,.0f} events/s   "
                      f"all threads: {engine['all_threads_events_per_s']:,.0f} events/s")
        console.print(f"[bold]end to end from Redis[/] ({e2e_events:,} events, 100 per message)…")
        e2e = end_to_end(e2e_events, rounds, work)
        arrow = (f"   with the Arrow decoder: {e2e['arrow_detector_events_per_s']:,.0f} events/s"
                 if "arrow_detector_events_per_s" in e2e else "")
        console.print(f"  detector ({e2e['decoder']} decoder): {e2e['detector_events_per_s']:,.0f} events/s   "
                      f"raw XREADGROUP+XACK: {e2e['raw_events_per_s']:,.0f} events/s{arrow}")
        console.print(f"[bold]alert latency[/] ({samples} triggers per rule, live traffic at 2,000 events/s)…")
        latency = alert_latency(samples, work)
        for name, figures in latency.items():
            extra = (f"  (fires once the event is final: p99 {figures['p99_after_final_s'] * 1000:,.0f} ms after the "
                     f"{figures['allowed_lateness_s']:g} s lateness; the {figures['window_s']} s window closes later)"
                     if "p99_after_final_s" in figures else "")
            console.print(f"  {name}: p50 {figures['p50_s'] * 1000:,.0f} ms  p99 {figures['p99_s'] * 1000:,.0f} ms  "
                          f"missed {figures['missed']}{extra}")
    console.print(f"fleetlens bench detect: {context.line()}", highlight=False)
    console.print_json(orjson.dumps({"engine": engine, "end_to_end": e2e, "latency": latency}).decode())
