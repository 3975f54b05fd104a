"""``fleetlens bench dashboard``: time until every panel of each dashboard page shows data, in headless Chromium.

Builds (or reuses) an embedded store of N simulated events ending now, serves the API and dashboard
from this process (access control off: loopback only), and opens each page cold (a new browser
context: no cache) for a range: the preset ending now, or (``end="newest"``) the same length ending at
the store's newest event, so a store seeded earlier is measured over the same data each time. The
figure per load is the time from navigation start until every panel reached its final state (data, or
"no data") - the first useful paint of the whole page. Each API request the page made is timed too
(Resource Timing, request start to response end), so the slowest call of a page can be named.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fleetlens.settings import Settings

PAGES = ("overview", "business", "performance", "logs", "alerts")
RANGE_S = {"15m": 900, "1h": 3600, "3h": 3 * 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
# The page's API requests (not its assets): path without the query, and duration in ms.
REQUESTS = """() => performance.getEntriesByType('resource')
  .filter(e => !new URL(e.name).pathname.startsWith('/ui/'))
  .map(e => [new URL(e.name).pathname, e.responseEnd - e.startTime])"""
SETTLED = """() => {
  const panels = [...document.querySelectorAll('[data-panel]')];
  return document.body.dataset.refreshed && panels.length > 0 && panels.every(p => p.dataset.state !== 'loading');
}"""


def ensure_store(data_dir: Path, events: int, rate: float, console: Console) -> int:
    """The number of events in ``data_dir``'s store, seeding ``events`` simulated ones ending now when it holds fewer."""
    from fleetlens.store.client import EmbeddedStore
    from fleetlens.workload.seed import seed

    held = 0
    if (data_dir / "chdb").exists():
        store = EmbeddedStore(data_dir / "chdb", "fleetlens")
        try:
            held = int(store.query_scalar("SELECT count() FROM events"))
        except Exception:  # noqa: BLE001 - an empty or foreign directory: seed it
            held = 0
        finally:
            store.close()
    if held < events:
        console.print(f"seeding {events:,} simulated events ending now into {data_dir / 'chdb'} (once; reused next time)…")
        seconds = seed(data_dir, events, rate)
        console.print(f"seeded in {seconds:.0f} s")
    return max(held, events) if held < events else held


def range_query(store, rng: str, end: str) -> str:
    """The URL hash query of a range: ``range=1h`` (ending now) or, for ``end="newest"``, start/end of the same
    length ending one second after the store's newest event."""
    if end == "now":
        return f"range={rng}"
    if rng not in RANGE_S:
        raise ValueError(f"unknown range {rng!r}; one of {', '.join(RANGE_S)}")
    newest = store.query_arrow("SELECT toUnixTimestamp64Milli(max(ts)) AS ms FROM events").column("ms")[0].as_py()
    end_ms = (int(newest) // 1000 + 1) * 1000
    iso = lambda ms: dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return f"start={iso(end_ms - RANGE_S[rng] * 1000)}&end={iso(end_ms)}"


def run_dashboard_bench(settings: Settings, data_dir: Path, events: int, rate: float, ranges: list[str], runs: int,
                        chromium: str, end: str = "now") -> list[dict]:
    """Per page and range: load times in ms over ``runs`` cold loads, the panels' final states, the median time
    of each API request the page made, and the load average over the page's loads."""
    from playwright.sync_api import sync_playwright

    from fleetlens.api.app import create_app
    from fleetlens.api.server import serve_in_thread
    from fleetlens.store.client import EmbeddedStore

    console = Console(stderr=True, width=200)
    held = ensure_store(data_dir, events, rate, console)
    settings = settings.model_copy(update={"data_dir": data_dir, "auth": settings.auth.model_copy(update={"enabled": False})})
    store = EmbeddedStore(data_dir / "chdb", "fleetlens")
    rows = []
    try:
        server = serve_in_thread(create_app(store, settings), "127.0.0.1", 0)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
                for rng in ranges:
                    query = range_query(store, rng, end)
                    for page_name in PAGES:
                        times, states, requests = [], {}, {}
                        load0 = os.getloadavg()[0]
                        for _ in range(runs):
                            context = browser.new_context(viewport={"width": 1400, "height": 1000})
                            page = context.new_page()
                            page.goto(f"{server.url}/ui/#/{page_name}?{query}")
                            page.wait_for_function(SETTLED, timeout=60_000, polling=10)
                            times.append(page.evaluate("performance.now()"))
                            states = page.eval_on_selector_all(
                                "[data-panel]", "els => Object.fromEntries(els.map(e => [e.dataset.panel, e.dataset.state]))")
                            for path, ms in page.evaluate(REQUESTS):
                                requests.setdefault(path, []).append(ms)
                            context.close()
                        load = (load0 + os.getloadavg()[0]) / 2
                        medians = {p: statistics.median(v) for p, v in sorted(requests.items(), key=lambda kv: -statistics.median(kv[1]))}
                        rows.append({"range": rng, "page": page_name, "events_in_store": held, "runs": runs,
                                     "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
                                     "panels": len(states), "ready": sum(s == "ready" for s in states.values()),
                                     "states": states, "requests_ms": medians, "load_avg": load})
                        console.print(f"{rng:>4} {page_name:<12} median {statistics.median(times):6.0f} ms  "
                                      f"max {max(times):6.0f} ms  panels ready {rows[-1]['ready']}/{len(states)}  "
                                      f"load {load:.1f}  " + "  ".join(f"{p} {ms:.0f}" for p, ms in medians.items()))
                browser.close()
        finally:
            server.stop()
    finally:
        store.close()
    return rows


def print_dashboard_bench(settings: Settings, data_dir: Path, events: int, rate: float, ranges: list[str], runs: int,
                          chromium: str, end: str = "now") -> None:
    """Run the benchmark and print a table."""
    t0 = time.monotonic()
    rows = run_dashboard_bench(settings, data_dir, events, rate, ranges, runs, chromium, end)
    table = Table(title=f"dashboard load until every panel shows data (headless Chromium, {rows[0]['events_in_store']:,} "
                        f"events in the store, {runs} cold loads each)")
    for column in ("range", "page", "median ms", "min ms", "max ms", "panels ready", "load avg", "API requests (median ms)"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["range"], r["page"], f"{r['median_ms']:.0f}", f"{r['min_ms']:.0f}", f"{r['max_ms']:.0f}",
                      f"{r['ready']}/{r['panels']}", f"{r['load_avg']:.1f}",
                      ", ".join(f"{p} {ms:.0f}" for p, ms in r["requests_ms"].items()))
    Console(width=200).print(table)
    Console(stderr=True).print(f"done in {time.monotonic() - t0:.0f} s")
