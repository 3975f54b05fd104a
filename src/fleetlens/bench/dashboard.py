"""``fleetlens bench dashboard``: time until every panel of each dashboard page shows data, in headless Chromium.

Builds (or reuses) an embedded store of N simulated events ending now, serves the API and dashboard
from this process (access control off: loopback only), and opens each page cold (a new browser
context: no cache) for a preset range. The figure per load is the time from navigation start until
every panel reached its final state (data, or "no data") - the first useful paint of the whole page.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fleetlens.settings import Settings

PAGES = ("overview", "business", "performance", "logs", "alerts")
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


def run_dashboard_bench(settings: Settings, data_dir: Path, events: int, rate: float, ranges: list[str], runs: int,
                        chromium: str) -> list[dict]:
    """Per page and range: load times in ms over ``runs`` cold loads, and the panels' final states."""
    from playwright.sync_api import sync_playwright

    from fleetlens.api.app import create_app
    from fleetlens.api.server import serve_in_thread
    from fleetlens.store.client import EmbeddedStore

    console = Console(stderr=True)
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
                    for page_name in PAGES:
                        times, states = [], {}
                        for _ in range(runs):
                            context = browser.new_context(viewport={"width": 1400, "height": 1000})
                            page = context.new_page()
                            page.goto(f"{server.url}/ui/#/{page_name}?range={rng}")
                            page.wait_for_function(SETTLED, timeout=60_000, polling=10)
                            times.append(page.evaluate("performance.now()"))
                            states = page.eval_on_selector_all(
                                "[data-panel]", "els => Object.fromEntries(els.map(e => [e.dataset.panel, e.dataset.state]))")
                            context.close()
                        rows.append({"range": rng, "page": page_name, "events_in_store": held, "runs": runs,
                                     "median_ms": statistics.median(times), "max_ms": max(times),
                                     "panels": len(states), "ready": sum(s == "ready" for s in states.values()),
                                     "states": states})
                        console.print(f"{rng:>4} {page_name:<12} median {statistics.median(times):6.0f} ms  "
                                      f"max {max(times):6.0f} ms  panels ready {rows[-1]['ready']}/{len(states)}")
                browser.close()
        finally:
            server.stop()
    finally:
        store.close()
    return rows


def print_dashboard_bench(settings: Settings, data_dir: Path, events: int, rate: float, ranges: list[str], runs: int,
                          chromium: str) -> None:
    """Run the benchmark and print a table."""
    t0 = time.monotonic()
    rows = run_dashboard_bench(settings, data_dir, events, rate, ranges, runs, chromium)
    table = Table(title=f"dashboard load until every panel shows data (headless Chromium, {rows[0]['events_in_store']:,} "
                        f"events in the store, {runs} cold loads each)")
    for column in ("range", "page", "median ms", "max ms", "panels ready"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["range"], r["page"], f"{r['median_ms']:.0f}", f"{r['max_ms']:.0f}", f"{r['ready']}/{r['panels']}")
    Console().print(table)
    Console(stderr=True).print(f"done in {time.monotonic() - t0:.0f} s")
