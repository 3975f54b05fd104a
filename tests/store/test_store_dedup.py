"""Dedup by event_id: within a batch, against the store, and ReplacingMergeTree as the net."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from fleetlens.store.dedup import drop_batch_duplicates, drop_stored, existing_event_ids, new_events
from tests.store.tables_data import T0, events_table


def test_within_batch_first_copy_wins():
    batch = events_table(4)
    doubled = pa.concat_tables([batch, batch.slice(1, 2)])
    out = drop_batch_duplicates(doubled)
    assert out.column("event_id").to_pylist() == ["ev-0", "ev-1", "ev-2", "ev-3"]
    assert out.to_pylist() == batch.to_pylist()
    assert drop_batch_duplicates(batch) is batch


def test_redelivered_batch_is_found_and_filtered(store):
    batch = events_table(30)
    store.insert_arrow("events", batch)
    lo, hi = pc.min_max(batch.column("ts")).values()
    ids = batch.column("event_id")
    assert existing_event_ids(store, "events", ids, lo, hi) == set(ids.to_pylist())
    assert existing_event_ids(store, "events", ["nope", "ev-3"], T0, T0 + dt.timedelta(seconds=1)) == {"ev-3"}
    # Outside the given time range nothing is found: the lookup is bounded by ts.
    assert existing_event_ids(store, "events", ids, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)) == set()
    assert existing_event_ids(store, "events", [], lo, hi) == set()

    mixed = pa.concat_tables([batch.slice(0, 10), events_table(5, prefix="new")])
    kept, dropped = drop_stored(store, "events", mixed)
    assert dropped == 10 and kept.column("event_id").to_pylist() == [f"new-{i}" for i in range(5)]
    assert new_events(store, "events", pa.concat_tables([mixed, mixed])).num_rows == 5


def test_double_insert_collapses_after_optimize_final(store):
    batch = events_table(30)
    store.insert_arrow("events", batch)
    store.insert_arrow("events", batch)  # a redelivery that slipped past the lookup
    assert store.query_scalar("SELECT count() FROM events") == 60
    assert store.query_scalar("SELECT count() FROM events FINAL") == 30
    store.command("OPTIMIZE TABLE events FINAL")
    assert store.query_scalar("SELECT count() FROM events") == 30
    assert store.query_scalar("SELECT uniqExact(event_id) FROM events") == 30
