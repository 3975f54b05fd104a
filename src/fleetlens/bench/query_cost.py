"""``fleetlens bench query-cost``: CPU and time each query family costs, one request at a time, on a quiet store.

Under ``fleetlens bench queries`` the families share two cores with ingest, so a request's latency is mostly
its wait for a core, and a family's p99 moves with the whole mix's CPU. This measures that CPU directly:
the API (as ``fleetlens api`` serves it, in this process, access control off) over an existing store, the
requests ``fleetlens load`` sends (its builders and context: the hour up to the store's newest business event),
each family ``requests`` times in turn after two warm-up requests, and for each request its time and the
CPU of the whole process (chDB's threads included). Background merges are stopped for the run (and started
again after): a merge would put its CPU into every request's.

Reported per family: time p50/p90 and CPU per request; and the CPU of one round of the mix by its weights,
the figure that decides how much query load fits beside ingest.
"""

from __future__ import annotations

import random
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from fleetlens.settings import Settings


def _process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_query_cost(settings: Settings, store_dir: Path, mix: str, requests: int = 20, seed: int = 0) -> dict[str, Any]:
    """Measure every family of ``mix`` on the store under ``store_dir``; returns the figures as a dict."""
    from fastapi.testclient import TestClient

    from fleetlens.api.app import create_app
    from fleetlens.store.client import EmbeddedStore
    from fleetlens.store.migrations import ensure_schema
    from fleetlens.workload.mix import BUILDERS, parse_mix
    from fleetlens.workload.runner import discover

    weights = parse_mix(mix)
    if not (store_dir / "chdb").is_dir():
        raise FileNotFoundError(f"no store under {store_dir} (seed one with `python -m fleetlens.workload.seed "
                                f"{store_dir} 20000000 2000`)")
    if requests < 1:
        raise ValueError(f"requests must be at least 1, got {requests}")
    store = EmbeddedStore(store_dir / "chdb", settings.database)
    rng = random.Random(seed)
    families: dict[str, Any] = {}
    try:
        ensure_schema(store)
        store.command("SYSTEM STOP MERGES")
        api_settings = settings.model_copy(update={"auth": settings.auth.model_copy(update={"enabled": False})})
        with TestClient(create_app(store, api_settings)) as client:
            ctx = discover(client)
            for family in weights:
                build = BUILDERS[family]
                for _ in range(2):
                    path, params = build(rng, ctx)
                    client.get(path, params=params)
                times, cpus, errors = [], [], 0
                for _ in range(requests):
                    path, params = build(rng, ctx)
                    cpu0, t0 = _process_cpu_s(), time.perf_counter()
                    response = client.get(path, params=params)
                    times.append((time.perf_counter() - t0) * 1000)
                    cpus.append((_process_cpu_s() - cpu0) * 1000)
                    errors += response.status_code >= 400
                times.sort()
                families[family] = {"weight": weights[family], "requests": requests, "errors": errors,
                                    "p50_ms": round(times[len(times) // 2], 1),
                                    "p90_ms": round(times[min(len(times) - 1, int(len(times) * 0.9))], 1),
                                    "cpu_ms": round(statistics.fmean(cpus), 1)}
    finally:
        try:
            store.command("SYSTEM START MERGES")
        finally:
            store.close()
    total_weight = sum(weights.values())
    mix_cpu = sum(f["weight"] * f["cpu_ms"] for f in families.values())
    return {"store_dir": str(store_dir), "mix": mix, "requests_per_family": requests, "families": families,
            "mix_cpu_ms_per_request": round(mix_cpu / total_weight, 1)}


def print_query_cost(settings: Settings, store_dir: Path, mix: str | None = None, requests: int = 20,
                     output: Path | None = None) -> None:
    """Run the benchmark and print one row per family and the mix's CPU per request."""
    import json

    from rich.table import Table

    from fleetlens.bench.context import RunContext
    from fleetlens.workload.mix import DEFAULT_MIX

    console = Console(width=160)
    context = RunContext()
    console.print(f"measuring each family {requests} times on {store_dir} (background merges stopped) ...")
    result = run_query_cost(settings, store_dir, mix or DEFAULT_MIX, requests)
    if output:
        output.write_text(json.dumps(result, indent=2))
    table = Table(title=f"fleetlens bench query-cost ({context.line()})")
    for column in ("family", "weight", "requests", "errors", "p50 ms", "p90 ms", "CPU ms/request"):
        table.add_column(column, justify="right")
    for name, f in result["families"].items():
        table.add_row(name, f"{f['weight']:g}", str(f["requests"]), str(f["errors"]), f"{f['p50_ms']:,.1f}",
                      f"{f['p90_ms']:,.1f}", f"{f['cpu_ms']:,.1f}")
    console.print(table)
    console.print(f"CPU per request of the mix ({result['mix']}): {result['mix_cpu_ms_per_request']:,.1f} ms")
