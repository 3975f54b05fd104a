"""``python -m fleetlens.bench.store``: what the store's insert and dedup choices cost.

Measures, on synthetic EVENTS_SCHEMA batches, in a scratch database:

* Arrow insert rate into ``ENGINE = Null`` (reading Arrow only), a plain ``MergeTree`` and the
  real ``ReplacingMergeTree`` events table (same columns, codecs and indexes);
* the existing-ids lookup (:func:`~fleetlens.store.dedup.existing_event_ids`) for one batch,
  when all of its ids are stored (a redelivery) and when none are (a fresh batch);
* ``count()`` against ``count() FINAL`` after one batch was inserted twice.

Runs against a fresh temporary chDB directory unless given a store (then it creates tables
``bench_events*`` in the store's database and drops them afterwards).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from fleetlens.contract.schema import EVENTS_SCHEMA
from fleetlens.store.client import EmbeddedStore, Store
from fleetlens.store.dedup import drop_stored, existing_event_ids
from fleetlens.store.tables import EVENTS_TABLE, render_create

PREFIX = "bench_"
_NO_CACHE = " SETTINGS use_query_condition_cache = 0"


def synthetic_events(rows: int, start_ms: int = 1_795_000_000_000, span_ms: int = 86_400_000, seed: int = 0) -> pa.Table:
    """``rows`` contract events (logs and business) over ``span_ms``, built column-wise with Arrow."""
    idx = pa.array(range(seed * rows, (seed + 1) * rows), pa.int64())
    text = pc.cast(idx, pa.string())

    def pick(values: list[str], mod: int) -> pa.Array:
        return pa.array(values).take(pc.bit_wise_and(pc.multiply(idx, mod), 0xFFFF).to_numpy() % len(values))

    def cat(*parts: pa.Array | str) -> pa.Array:
        return pc.binary_join_element_wise(*parts, "")

    empty = pa.array([""] * rows, pa.string())
    ts_ms = pc.add(start_ms, pc.divide(pc.multiply(pc.remainder(idx, rows), span_ms), rows))
    kind = pick(["log", "log", "log", "business"], 7)
    level = pick(["debug", "info", "info", "info", "warn", "error"], 13)
    columns = {
        "event_id": cat("ev-", text, "-", pc.cast(pc.multiply(idx, 2654435761), pa.string())),
        "ts": pc.cast(ts_ms, pa.timestamp("ms", tz="UTC")),
        "kind": kind,
        "service": pick(["payment", "cart", "catalog", "auth", "search", "checkout", "gateway", "user"], 31),
        "app": pick(["shop"], 1),
        "host": cat("host-", pc.cast(pc.remainder(idx, 40), pa.string())),
        "pod": cat("pod-", pc.cast(pc.remainder(idx, 200), pa.string())),
        "container": pick(["app", "sidecar"], 3),
        "node": cat("node-", pc.cast(pc.remainder(idx, 8), pa.string())),
        "level": level,
        "event_type": pick(["http_request", "db_query", "payment_call", "exception"], 17),
        "message": cat("request handled in ", pc.cast(pc.remainder(idx, 997), pa.string()), " ms for order ", text, " status ok"),
        "action_id": cat("act-", pc.cast(pc.divide(idx, 5), pa.string())),
        "logger": pick(["app.api", "app.db", "app.pay"], 5),
        "source_file": pick(["api.py", "db.py", "pay.py"], 11),
        "line": pc.remainder(idx, 500),
        "duration_ms": pc.cast(pc.remainder(idx, 1000), pa.float64()),
        "user_id": cat("user-", pc.cast(pc.remainder(idx, 5000), pa.string())),
        "session_id": empty,
        "operation": empty,
        "page": empty,
        "order_id": empty,
        "amount": pa.nulls(rows, pa.float64()),
        "currency": empty,
        "provider": empty,
        "attempt": pa.nulls(rows, pa.int64()),
        "outcome": empty,
        "error_code": empty,
        "attrs": pa.array([[("region", "eu")]] * rows, pa.map_(pa.string(), pa.string())),
    }
    return pa.table(columns).cast(EVENTS_SCHEMA)


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _insert_rates(
    store: Store, targets: list[tuple[str, dict[str, object] | None]], batches: list[pa.Table]
) -> list[float]:
    """Rows/s into each (table, insert settings); batches interleaved so background merges weigh on all alike."""
    seconds = [0.0] * len(targets)
    for b in batches:
        for i, (table, settings) in enumerate(targets):
            seconds[i] += _timed(lambda: store.insert_arrow(table, b, settings=settings))
    rows = sum(b.num_rows for b in batches)
    return [rows / s for s in seconds]


def _best_of(n: int, fn: Callable[[], object]) -> float:
    return min(_timed(fn) for _ in range(n))


def run_store_bench(rows: int = 1_000_000, batch: int = 50_000, store: Store | None = None) -> dict[str, float]:
    """Measure (see the module docstring); rates in rows/s, times in milliseconds."""
    workdir = None
    if store is None:
        workdir = Path(tempfile.mkdtemp(prefix="fleetlens-store-bench-"))
        store = EmbeddedStore(workdir / "chdb", "fleetlens")
    events, null, plain, inblock = (f"{PREFIX}events{s}" for s in ("", "_null", "_mt", "_inblock"))
    keys = f"PARTITION BY {EVENTS_TABLE.partition_by} ORDER BY ({', '.join(EVENTS_TABLE.order_by)})"
    try:
        for stmt in render_create(dataclasses.replace(EVENTS_TABLE, name=events), store.render_context):
            store.command(stmt)
        store.command(f"CREATE TABLE IF NOT EXISTS {store.table(null)} AS {store.table(events)} ENGINE = Null")
        store.command(f"CREATE TABLE IF NOT EXISTS {store.table(plain)} AS {store.table(events)} ENGINE = MergeTree {keys}")
        store.command(f"CREATE TABLE IF NOT EXISTS {store.table(inblock)} AS {store.table(events)}")
        data = synthetic_events(rows)
        batches = [data.slice(i, batch) for i in range(0, rows, batch)]
        out: dict[str, float] = {"rows": rows, "batch": batch}
        # The last target is the ReplacingMergeTree with ClickHouse's default in-block replacing
        # pass (optimize_on_insert = 1), which ingest skips because batches arrive deduplicated.
        rates = _insert_rates(
            store, [(null, None), (plain, None), (events, None), (inblock, {"optimize_on_insert": 1})], batches
        )
        (
            out["insert_null_rows_per_s"],
            out["insert_mergetree_rows_per_s"],
            out["insert_replacing_rows_per_s"],
            out["insert_replacing_optimize_on_insert_rows_per_s"],
        ) = rates

        probe = batches[len(batches) // 2]
        lo, hi = pc.min_max(probe.column("ts")).values()
        ids = probe.column("event_id")
        fresh = synthetic_events(batch, seed=10_000).column("event_id")  # same ts range, unknown ids
        out["existing_ids_all_stored_ms"] = 1000 * _best_of(3, lambda: existing_event_ids(store, events, ids, lo, hi))
        out["existing_ids_none_stored_ms"] = 1000 * _best_of(3, lambda: existing_event_ids(store, events, fresh, lo, hi))
        out["existing_ids_found"] = len(existing_event_ids(store, events, ids, lo, hi))
        out["drop_stored_batch_ms"] = 1000 * _best_of(3, lambda: drop_stored(store, events, probe))

        store.insert_arrow(events, probe)  # a redelivery that slipped past the lookup
        count = f"SELECT count() FROM {store.table(events)}"
        out["count_ms"] = 1000 * _best_of(3, lambda: store.query_scalar(count + _NO_CACHE))
        out["count_final_ms"] = 1000 * _best_of(3, lambda: store.query_scalar(count + " FINAL" + _NO_CACHE))
        out["count_with_duplicates"] = store.query_scalar(count)
        out["count_final"] = store.query_scalar(count + " FINAL")
        out["bytes_on_disk_per_row"] = store.query_scalar(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active",
            {"db": store.database, "t": events},
        ) / out["count_with_duplicates"]
        return out
    finally:
        for name in (events, null, plain, inblock):
            store.command(f"DROP TABLE IF EXISTS {store.table(name)}")
        if workdir is not None:
            store.close()
            shutil.rmtree(workdir, ignore_errors=True)


_LABELS = {
    "insert_null_rows_per_s": "insert into ENGINE = Null (Arrow read only), rows/s",
    "insert_mergetree_rows_per_s": "insert into MergeTree, rows/s",
    "insert_replacing_rows_per_s": "insert into ReplacingMergeTree (the events table, as ingest does), rows/s",
    "insert_replacing_optimize_on_insert_rows_per_s": "… same with optimize_on_insert = 1 (ClickHouse default), rows/s",
    "existing_ids_all_stored_ms": "stored-ids lookup, 50k ids all stored, ms",
    "existing_ids_none_stored_ms": "stored-ids lookup, 50k ids none stored, ms",
    "drop_stored_batch_ms": "drop_stored on a 50k batch, ms",
    "count_ms": "count(), ms",
    "count_final_ms": "count() FINAL, ms",
    "bytes_on_disk_per_row": "bytes on disk per event",
}


def print_store_bench(rows: int = 1_000_000, batch: int = 50_000) -> None:
    """Run the benchmark and print a table with the machine and date."""
    from rich.console import Console
    from rich.table import Table

    from fleetlens.bench.context import RunContext

    context = RunContext()
    out = run_store_bench(rows, batch)
    table = Table(title=f"fleetlens bench store ({context.line()}; {rows:,} rows, {batch:,} per insert)")
    table.add_column("what")
    table.add_column("figure", justify="right")
    for key, label in _LABELS.items():
        table.add_row(label, f"{out[key]:,.1f}" if out[key] < 100 else f"{out[key]:,.0f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    print(json.dumps(run_store_bench(), indent=2))
