"""``fleetlens bench auth``: what access control and self-observability cost per request and per batch.

* token verification: the first check of a token (scrypt) and a repeated one (in-memory cache);
* HTTP round trips over loopback to one cheap endpoint (``/auth/me``) with auth off, with a bearer
  token and with a session cookie, and to a public path (``/healthz``): the guard's share of a request;
* ``record_batch`` (the per-batch metrics update of ingest) and one ``/metrics`` rendering.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import httpx


def _timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"per_s": round(len(samples) / sum(samples), 1), "p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3)}


def run(requests: int = 2000) -> dict[str, Any]:
    """Every measurement, as a dict (times in ms)."""
    from fleetlens.api.app import create_app
    from fleetlens.api.auth import SESSION_COOKIE, TokenStore
    from fleetlens.api.server import serve_in_thread
    from fleetlens.observe import metrics
    from fleetlens.settings import Settings

    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the results
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tokens = TokenStore(Path(tmp) / "tokens.json")
        token = tokens.create("read", "bench")
        first = _timed(lambda: TokenStore(tokens.path).verify(token), 5)
        cached = _timed(lambda: tokens.verify(token), 10_000)
        results["verify_first_ms"] = round(statistics.median(first) * 1000, 2)
        results["verify_cached_us"] = round(statistics.median(cached) * 1e6, 2)

        http: dict[str, Any] = {}
        for label, enabled in (("auth off", False), ("auth on", True)):
            settings = Settings(data_dir=Path(tmp), auth={"enabled": enabled, "rate_limit_per_s": 0})
            handle = serve_in_thread(create_app(None, settings), "127.0.0.1", 0)  # type: ignore[arg-type]
            try:
                cases = {f"/auth/me, {label}": {}} if not enabled else {
                    "/auth/me, bearer token": {"headers": {"Authorization": f"Bearer {token}"}},
                    "/healthz, public (guard only)": {},
                }
                for name, kw in cases.items():
                    path = name.split(",")[0]
                    with httpx.Client(base_url=handle.url, timeout=10, **kw) as client:
                        assert client.get(path).status_code == 200
                        http[name] = _summary(_timed(lambda: client.get(path), requests))
                if enabled:
                    with httpx.Client(base_url=handle.url, timeout=10) as browser:
                        browser.post("/auth/login", json={"token": token})
                        assert browser.cookies.get(SESSION_COOKIE) and browser.get("/auth/me").status_code == 200
                        http["/auth/me, session cookie"] = _summary(_timed(lambda: browser.get("/auth/me"), requests))
            finally:
                handle.stop()
        results["http"] = http

    batch = dict(messages=500, lines=50_000, events_stored=45_000, metrics_stored=4_900, duplicates_skipped=0,
                 seconds=0.12)
    rejected = ["level"] * 50 + ["ts"] * 50
    record = _timed(lambda: metrics.record_batch(rejected_fields=rejected, **batch), 2000)  # type: ignore[arg-type]
    results["record_batch_us"] = round(statistics.median(record) * 1e6, 2)
    render = _timed(metrics.exposition, 200)
    results["metrics_render_ms"] = round(statistics.median(render) * 1000, 3)
    results["metrics_bytes"] = len(metrics.exposition())
    return results


def print_auth_bench(requests: int, as_json: bool) -> None:
    """Run and print a table (or JSON)."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    results = run(requests)
    if as_json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return
    console = Console()
    console.print(f"token check: first (scrypt) {results['verify_first_ms']} ms, cached {results['verify_cached_us']} µs")
    table = Table(title=f"{requests} sequential requests per case, one keep-alive connection", title_justify="left")
    for column in ("case", "req/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for name, row in results["http"].items():
        table.add_row(name, str(row["per_s"]), str(row["p50_ms"]), str(row["p99_ms"]))
    console.print(table)
    console.print(f"metrics: record_batch {results['record_batch_us']} µs per batch; /metrics rendering "
                  f"{results['metrics_render_ms']} ms for {results['metrics_bytes']:,} bytes")
