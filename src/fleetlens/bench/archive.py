"""``fleetlens bench archive``: archive throughput, and the latency of queries over an archived day vs the same day hot.

A fresh temporary chDB store is filled with simulated traffic (the fleet simulator, ``--days`` days
ending 40 days ago), then:

* **throughput**: one archiver run over every day (export, read back, verify, move, commit, drop) to a
  local directory target: rows/s, Parquet MB/s written, and the hot store's uncompressed MB/s;
* **latency**: three query families (business totals by hour, an event-search page with level
  counts, durations by operation) over one full day, before archiving (hot) and after (the same day
  read from Parquet), median of ``--repeat`` runs each, query-condition cache off.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from fleetlens.archive.archiver import Archiver
from fleetlens.archive.layout import ArchiveTarget
from fleetlens.archive.reader import ArchiveView
from fleetlens.contract.decode import decode_payloads
from fleetlens.query import business, events, perf
from fleetlens.query.common import Limits
from fleetlens.simulate.runner import generate_payloads
from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema

UTC = dt.timezone.utc


def _fill(store: EmbeddedStore, events_n: int, days: int) -> tuple[dt.date, int]:
    today = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - dt.timedelta(days=40 + days)
    rate = events_n / (days * 86400)
    rows = 0
    chunk_s = 6 * 3600  # generate and insert six hours at a time: bounded memory
    for i in range(days * 4):
        start_ms = int((first + dt.timedelta(seconds=i * chunk_s)).timestamp() * 1000)
        payloads = generate_payloads(10**9, seed=i, start_ms=start_ms, rate=rate, users=2000, duration_s=chunk_s)
        decoded = decode_payloads(payloads)
        store.insert_arrow("events", decoded.events)
        store.insert_arrow("metrics", decoded.metrics)
        rows += decoded.events.num_rows + decoded.metrics.num_rows
    return first.date(), rows


def _latency(store: EmbeddedStore, limits: Limits, day: dt.date, repeat: int) -> dict[str, float]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=UTC)
    rng = {"start": start, "end": start + dt.timedelta(days=1)}
    families = {
        "business totals, 1h": lambda: business.business_metrics(store, **rng, interval="1h", limits=limits),
        "event search page + counts": lambda: events.search_events(store, **rng, limit=100, limits=limits),
        "durations by operation, 1h": lambda: perf.durations(store, **rng, interval="1h", limits=limits),
    }
    out = {}
    for name, query in families.items():
        query()  # warm-up: connection, file metadata
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            query()
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = round(statistics.median(times), 1)
    return out


def run_archive_bench(events_n: int = 2_000_000, days: int = 2, repeat: int = 5) -> dict[str, Any]:
    """Fill a scratch store, measure query latency hot, archive everything, measure it again from the archive."""
    tmp = Path(tempfile.mkdtemp(prefix="fleetlens-bench-archive-"))
    store = EmbeddedStore(tmp / "chdb", "bench", query_timeout_s=600)
    try:
        ensure_schema(store)
        store.command("SET use_query_condition_cache = 0")  # single-threaded: the same pooled connection
        t0 = time.perf_counter()
        first_day, rows = _fill(store, events_n, days)
        fill_s = time.perf_counter() - t0
        store.command("OPTIMIZE TABLE `bench`.`events` FINAL")  # hot at its best: merged parts
        day = first_day + dt.timedelta(days=1) if days > 1 else first_day
        limits = Limits(timeout_s=600, max_rows=10_000, max_buckets=20_000)
        hot = _latency(store, limits, day, repeat)
        target = ArchiveTarget("local", pafs.LocalFileSystem(), str(tmp / "archive"), str(tmp / "archive"))
        uncompressed = int(store.query_scalar(
            "SELECT sum(data_uncompressed_bytes) FROM system.parts WHERE database = 'bench' AND active "
            "AND table IN ('events', 'metrics')") or 0)
        t0 = time.perf_counter()
        result = Archiver(store, target).run(first_day + dt.timedelta(days=days + 1))
        archive_s = time.perf_counter() - t0
        archived = _latency(store, dataclasses.replace(limits, archive=ArchiveView(target, ttl_s=3600)), day, repeat)
        return {
            "rows": rows, "days": days, "fill_s": round(fill_s, 1),
            "archive_s": round(archive_s, 2), "archived_rows": result.rows, "failed": len(result.failed),
            "rows_per_s": round(result.rows / archive_s), "parquet_mb": round(result.bytes / 1e6, 1),
            "parquet_mb_per_s": round(result.bytes / 1e6 / archive_s, 1),
            "uncompressed_mb_per_s": round(uncompressed / 1e6 / archive_s, 1),
            "latency_ms": {name: {"hot": hot[name], "archive": archived[name]} for name in hot},
            "day": day.isoformat(),
        }
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


def print_archive_bench(events_n: int, days: int, repeat: int, as_json: bool = False) -> None:
    """Run :func:`run_archive_bench` and print the figures."""
    r = run_archive_bench(events_n, days, repeat)
    if as_json:
        print(json.dumps(r, indent=2))
        return
    print(f"archived {r['archived_rows']:,} rows ({r['days']} days, {r['parquet_mb']} MB Parquet) in {r['archive_s']} s: "
          f"{r['rows_per_s']:,} rows/s, {r['parquet_mb_per_s']} MB/s Parquet written, "
          f"{r['uncompressed_mb_per_s']} MB/s of uncompressed columns; {r['failed']} failed")
    print(f"query latency over one day ({r['day']}), median ms: hot → archived")
    for name, t in r["latency_ms"].items():
        print(f"  {name:30s} {t['hot']:8.1f} → {t['archive']:8.1f}")
