"""``fleetlens bench queries``: query latency per family while ingest writes at a set rate into a large store.

The setup the query issue's bar names, on one machine:

1. an existing store of many events (``python -m fleetlens.workload.seed DIR 20000000 2000`` makes 20M);
2. a fresh Redis-protocol server, filled up front with enough simulated events (continuing the store's
   newest events, at the same event-time density) for the whole run, so no producer competes for the
   cores while measuring: producers run elsewhere in a deployment;
3. in this process, as ``fleetlens up`` runs them: the ingest worker, capped at ``ingest_rate`` events/s
   (``ingest.max_events_per_s``), and the HTTP API over the same store;
4. ``phase_s`` seconds of ingest alone, then ``phase_s`` seconds of ``fleetlens load`` (a separate process,
   as a client is) against the API while ingest goes on.

Reported: events stored per second in each phase (the drop is the cost of the queries to ingestion),
latency p50/p95/p99 per query family as the client saw it, and the load average.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from fleetlens.settings import Settings

TRACE_P99_TARGET_MS = 50.0
AGGREGATE_P99_TARGET_MS = 300.0
INGEST_DROP_TARGET = 0.20
AGGREGATE_FAMILIES = ("users", "business", "perf", "resources")


def _seed_hint(store_dir: Path) -> str:
    return f"seed one with python -m fleetlens.workload.seed {store_dir} 20000000 2000"


def _prefill(client: Any, stream: str, start_ms: int, events: int, per_message: int, console: Console) -> int:
    """Write ``events`` simulated events (2,000 per simulated second from ``start_ms``, the seed store's density)
    to ``stream``; returns the messages written."""
    from fleetlens.simulate.config import SimulationConfig
    from fleetlens.simulate.generator import Simulator
    from fleetlens.simulate.runner import encode_messages
    from fleetlens.sources.redis import RedisStreamSink

    from rich.progress import Progress

    config = SimulationConfig(seed=11, start_ms=start_ms, count=events, rate=2000.0, users=2000)
    sink = RedisStreamSink(client, pipeline_size=2000)
    messages = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("pre-filling the stream", total=events)
        for batch in Simulator(config).batches(100_000):
            payloads = encode_messages(batch, per_message)
            sink.send(stream, payloads)
            messages += len(payloads)
            progress.advance(task, len(batch))
    console.print(f"pre-filled {events:,} events in {messages:,} messages")
    return messages


def run_queries_bench(settings: Settings, store_dir: Path, ingest_rate: float, phase_s: float, load_rate: float,
                      clients: int, mix: str, warmup_s: float = 10.0, console: Console | None = None) -> dict[str, Any]:
    """Run the two phases (see the module docstring); returns the figures as a dict."""
    from fleetlens.api.app import create_app
    from fleetlens.api.server import serve_in_thread
    from fleetlens.ingest.stats import IngestStats
    from fleetlens.ingest.worker import IngestWorker
    from fleetlens.sources.redis import RedisStreamSource, connect
    from fleetlens.sources.redis_server import RedisServer, free_port
    from fleetlens.store.client import EmbeddedStore
    from fleetlens.store.migrations import ensure_schema

    console = console or Console(stderr=True)
    if not (store_dir / "chdb").is_dir():
        raise FileNotFoundError(f"no store under {store_dir}: {_seed_hint(store_dir)}")
    workdir = Path(tempfile.mkdtemp(prefix="fleetlens-bench-queries-"))
    server = RedisServer(free_port(), workdir / "redis").start()
    client = connect(server.url)
    store = EmbeddedStore(store_dir / "chdb", settings.database)
    stream = settings.streams[0]
    result: dict[str, Any] = {"ingest_rate_offered": ingest_rate, "phase_s": phase_s, "load_rate": load_rate,
                              "clients": clients, "mix": mix, "cores": os.cpu_count()}
    try:
        ensure_schema(store)
        held = int(store.query_scalar("SELECT count() FROM events")) + int(store.query_scalar("SELECT count() FROM metrics"))
        if not held:
            raise ValueError(f"the store under {store_dir} holds no events: {_seed_hint(store_dir)}")
        newest_ms = int(store.query_scalar("SELECT toUnixTimestamp64Milli(max(ts)) FROM events"))
        result["events_in_store_before"] = held
        console.print(f"store {store_dir}: {held:,} events, newest {newest_ms}")
        needed = int(ingest_rate * (warmup_s + 2 * phase_s + 10))
        result["messages_prefilled"] = _prefill(client, stream, newest_ms + 1, needed, 100, console)

        ingest_settings = settings.ingest.model_copy(update={"max_events_per_s": ingest_rate})
        stats = IngestStats()
        source = RedisStreamSource(client, [stream], settings.ingest.group, "bench-queries", settings.dlq_stream,
                                   settings.redis)
        worker = IngestWorker(source, store, ingest_settings, stats)
        stop = threading.Event()
        ingest = threading.Thread(target=worker.run, args=(stop,), name="bench-ingest")
        api_settings = settings.model_copy(update={"auth": settings.auth.model_copy(update={"enabled": False})})
        api = serve_in_thread(create_app(store, api_settings), "127.0.0.1", 0)
        ingest.start()
        try:
            def stored() -> int:
                return stats.events_stored + stats.metrics_stored

            time.sleep(warmup_s)
            phases: dict[str, dict[str, float]] = {}
            n0, t0, load0 = stored(), time.monotonic(), os.getloadavg()[0]
            console.print(f"ingest alone for {phase_s:g} s ...")
            time.sleep(phase_s)
            n1, t1 = stored(), time.monotonic()
            phases["ingest_alone"] = {"events_per_s": (n1 - n0) / (t1 - t0), "load_avg": (load0 + os.getloadavg()[0]) / 2}
            console.print(f"  {phases['ingest_alone']['events_per_s']:,.0f} events/s stored")

            out = workdir / "load.json"
            console.print(f"ingest + fleetlens load ({load_rate:g} req/s, {clients} clients) for {phase_s:g} s ...")
            load0 = os.getloadavg()[0]
            n1, t1 = stored(), time.monotonic()
            subprocess.run([sys.executable, "-m", "fleetlens", "load", "--url", api.url, "--rate", str(load_rate),
                            "--clients", str(clients), "--duration", str(phase_s), "--mix", mix, "--json",
                            "--output", str(out)], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "FLEETLENS_TOKEN": ""})
            n2, t2 = stored(), time.monotonic()
            phases["ingest_with_queries"] = {"events_per_s": (n2 - n1) / (t2 - t1),
                                             "load_avg": (load0 + os.getloadavg()[0]) / 2}
            result["phases"] = phases
            result["load"] = json.loads(out.read_text())
            if worker.error:
                raise worker.error
            if source.lag().undelivered.get(stream, 1) == 0:
                console.print("[yellow]the pre-filled backlog ran out: rates are a lower bound[/]")
                result["backlog_ran_out"] = True
        finally:
            stop.set()
            ingest.join()
            api.stop()
    finally:
        store.close()
        client.close()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return _judge(result)


def _judge(result: dict[str, Any]) -> dict[str, Any]:
    """Add the issue's targets and whether each is met."""
    families = result["load"]["families"]
    alone = result["phases"]["ingest_alone"]["events_per_s"]
    drop = 1 - result["phases"]["ingest_with_queries"]["events_per_s"] / alone if alone else 1.0
    trace_p99 = families.get("trace", {}).get("p99_ms")
    aggregates = {f: families[f].get("p99_ms") for f in AGGREGATE_FAMILIES if f in families}
    result["ingest_drop"] = drop
    result["targets"] = {
        "trace_p99_ms": {"target": TRACE_P99_TARGET_MS, "value": trace_p99,
                         "met": trace_p99 is not None and trace_p99 < TRACE_P99_TARGET_MS},
        "aggregate_p99_ms": {"target": AGGREGATE_P99_TARGET_MS, "value": max(aggregates.values(), default=None),
                             "met": bool(aggregates) and all(v is not None and v < AGGREGATE_P99_TARGET_MS for v in aggregates.values())},
        "ingest_drop": {"target": INGEST_DROP_TARGET, "value": drop, "met": drop < INGEST_DROP_TARGET},
    }
    return result


def print_queries_bench(settings: Settings, store_dir: Path, ingest_rate: float, phase_s: float, load_rate: float,
                        clients: int, mix: str | None = None, output: Path | None = None) -> None:
    """Run the benchmark and print the phases, the latency table and the targets (``mix``: default ``fleetlens load``'s)."""
    from rich.table import Table

    from fleetlens.workload.mix import DEFAULT_MIX, parse_mix

    mix = mix or DEFAULT_MIX
    parse_mix(mix)  # a bad mix fails here, before the store is touched

    from fleetlens.bench.context import RunContext

    console = Console(width=160)
    context = RunContext()
    result = run_queries_bench(settings, store_dir, ingest_rate, phase_s, load_rate, clients, mix)
    if output:
        output.write_text(json.dumps(result, indent=2))
    phases = result["phases"]
    console.print(f"ingest offered {result['ingest_rate_offered']:,.0f} events/s: stored "
                  f"{phases['ingest_alone']['events_per_s']:,.0f}/s alone (load {phases['ingest_alone']['load_avg']:.1f}), "
                  f"{phases['ingest_with_queries']['events_per_s']:,.0f}/s with queries "
                  f"(load {phases['ingest_with_queries']['load_avg']:.1f}): drop {result['ingest_drop']:.0%}")
    load = result["load"]
    table = Table(title=f"fleetlens bench queries ({context.line()}): "
                        f"{load['requests']} requests, {load['per_s']}/s answered")
    for column in ("family", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for name, f in load["families"].items():
        table.add_row(name, str(f["requests"]), str(f.get("errors", 0)), *(f"{f.get(k, float('nan')):,.0f}" for k in ("p50_ms", "p95_ms", "p99_ms")))
    console.print(table)
    for name, t in result["targets"].items():
        value = t["value"]
        shown = f"{value:.0%}" if name == "ingest_drop" and value is not None else f"{value:,.0f}" if value is not None else "-"
        console.print(f"{name}: {shown} (target < {t['target']:g}{'' if name == 'ingest_drop' else ' ms'}): "
                      + ("[green]met[/]" if t["met"] else "[red]not met[/]"))
