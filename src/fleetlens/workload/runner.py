"""Run a query mix against the API: N client threads sharing a target rate; latency per family.

Requests are scheduled open-loop (fixed intervals per client) so a slow answer shows as latency,
not as a lower offered rate; a client that falls behind sends at once and does not catch up in bursts
beyond its schedule.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
import numpy as np

from fleetlens.workload.mix import BUILDERS, Context


@dataclass
class LoadResult:
    """Latencies (ms) and error counts per family, and the wall time of the run.

    ``latencies`` are as the client sees them (request sent → answer read); ``server`` are the API's own
    ``X-Elapsed-Ms`` (the query's time inside the server): the difference is HTTP, queueing and serialization.
    """

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Per family: requests, errors, throughput (req/s), p50/p95/p99/max ms; plus totals."""
        families = {}
        for name in sorted(set(self.latencies) | set(self.errors)):
            lat = np.array(self.latencies.get(name, []), dtype=float)
            families[name] = {
                "requests": int(lat.size) + self.errors.get(name, 0),
                "errors": self.errors.get(name, 0),
                "per_s": round(lat.size / self.seconds, 2) if self.seconds else 0.0,
                **_percentiles("", self.latencies.get(name, [])),
                **({"max_ms": round(float(lat.max()), 2)} if lat.size else {}),
                **_percentiles("server_", self.server.get(name, [])),
            }
        total = sum(f["requests"] for f in families.values())
        return {"seconds": round(self.seconds, 2), "requests": total,
                "per_s": round(total / self.seconds, 2) if self.seconds else 0.0, "families": families}


def _percentiles(prefix: str, values: list[float]) -> dict[str, float]:
    """``{prefix}p50_ms``, p95 and p99 of ``values`` (none when empty)."""
    if not values:
        return {}
    arr = np.array(values, dtype=float)
    return {f"{prefix}p{q}_ms": round(float(np.percentile(arr, q)), 2) for q in (50, 95, 99)}


def discover(client: httpx.Client, window_s: int = 3600) -> Context:
    """A context from the store behind the API: the hour up to its newest business event (of the last 30
    days), the action ids of buys in it, their services."""
    now_ms = int(time.time() * 1000)
    first = client.get("/events", params={"start": now_ms - 30 * 86400_000, "end": now_ms, "limit": 1, "kind": "business"})
    if first.status_code in (401, 403):
        raise RuntimeError("the API refused the token: give one with --token, FLEETLENS_TOKEN or --token-file")
    newest = first.json()["events"]
    if not newest:
        raise RuntimeError("the store holds no business events to query")
    end_ms = _ms(newest[0]["ts"]) + 1
    start_ms = end_ms - window_s * 1000
    sample = client.get("/events", params={"start": start_ms, "end": end_ms, "kind": "business", "operation": "buy",
                                           "limit": 500}).json()["events"]
    actions = tuple(e["action_id"] for e in sample if e["action_id"]) or (newest[0]["action_id"],)
    services = tuple(sorted({e["service"] for e in sample})) or ("gateway",)
    return Context(str(start_ms), str(end_ms), actions, services)


def _ms(iso: str) -> int:
    import datetime as dt

    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def run_load(url: str, mix: dict[str, float], rate: float, clients: int, duration_s: float, ctx: Context | None = None,
             seed: int = 1, progress: Callable[[LoadResult, float], None] | None = None,
             token: str | None = None) -> LoadResult:
    """Send ``rate`` requests/s in total from ``clients`` threads for ``duration_s``; return latencies.

    ``token``: the API token sent as ``Authorization: Bearer`` (the API requires one unless auth is off).
    """
    result = LoadResult()
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as probe:
        ctx = ctx or discover(probe)
    names, weights = list(mix), list(mix.values())
    interval = clients / rate
    t0 = time.monotonic()
    stop_at = t0 + duration_s

    def client_loop(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        next_at = t0 + interval * i / clients
        with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
            while True:
                now = time.monotonic()
                if next_at > now:
                    time.sleep(next_at - now)
                if time.monotonic() >= stop_at:
                    return
                next_at = max(next_at + interval, time.monotonic() - interval)
                family = rng.choices(names, weights)[0]
                path, params = BUILDERS[family](rng, ctx)
                sent = time.perf_counter()
                try:
                    response = http.get(path, params=params)
                    ok = response.status_code < 400
                    elapsed = response.headers.get("X-Elapsed-Ms")
                except httpx.HTTPError:
                    ok, elapsed = False, None
                took = (time.perf_counter() - sent) * 1000
                with lock:
                    if ok:
                        result.latencies[family].append(took)
                        if elapsed is not None:
                            result.server[family].append(float(elapsed))
                    else:
                        result.errors[family] += 1

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        result.seconds = time.monotonic() - t0
        if progress:
            with lock:
                progress(result, min(1.0, result.seconds / duration_s))
    result.seconds = min(time.monotonic() - t0, duration_s) if duration_s else time.monotonic() - t0
    return result
