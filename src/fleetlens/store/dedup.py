"""Dedup by ``event_id`` before insert, so a redelivered batch does not store events twice.

Three layers (``docs/store.md`` has the measurements):

1. :func:`drop_batch_duplicates`: one row per ``event_id`` within a batch (first one wins);
2. :func:`existing_event_ids`: which of a batch's ids the table already holds, looked up only
   within the batch's time range (partition pruning + primary key on ``ts``);
3. the tables are ``ReplacingMergeTree`` with ``event_id`` ending the sorting key: copies that
   slip past 1 and 2 (two workers inserting the same redelivery at once) collapse on merge, and
   ``FINAL`` queries never see them.

:func:`new_events` combines 1 and 2 for the ingest worker; :func:`drop_stored` is 2 alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from fleetlens.store.client import EXTERNAL, Store


def drop_batch_duplicates(batch: pa.Table, key: str = "event_id") -> pa.Table:
    """``batch`` with only the first row of each ``key`` value, order kept."""
    if batch.num_rows < 2 or pc.count_distinct(batch.column(key)).as_py() == batch.num_rows:
        return batch
    indexed = pa.table({key: batch.column(key), "_row": pa.array(range(batch.num_rows), pa.int64())})
    first = indexed.group_by(key, use_threads=False).aggregate([("_row", "min")]).column("_row_min")
    return batch.take(first.take(pc.sort_indices(first)))


def _epoch_ms(value: dt.datetime | int | pa.Scalar) -> int:
    if isinstance(value, pa.Scalar):
        value = value.cast(pa.timestamp("ms", tz="UTC")).value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware (UTC) datetime or epoch milliseconds")
        return round(value.timestamp() * 1000)
    return int(value)


def existing_event_ids(
    store: Store,
    table: str,
    event_ids: pa.Array | pa.ChunkedArray | Iterable[str],
    ts_min: dt.datetime | int | pa.Scalar,
    ts_max: dt.datetime | int | pa.Scalar,
    *,
    ts_column: str = "ts",
) -> set[str]:
    """The ids among ``event_ids`` already stored in ``table`` with ``ts_min <= ts <= ts_max``.

    ``ts_min``/``ts_max``: aware datetimes, epoch milliseconds or Arrow timestamp scalars (the
    batch's ``pc.min_max(ts)``). The time bound is what makes this cheap: only the batch's days'
    partitions and the granules of its time range are read.
    """
    if not isinstance(event_ids, (pa.Array, pa.ChunkedArray)):
        event_ids = pa.array(list(event_ids), pa.string())
    if len(event_ids) == 0:
        return set()
    # The ids travel as an Arrow table, not an array literal: `IN {ids:Array(String)}` is a linear
    # has() per row (50k ids: ~7 s); a subquery builds a hash set (chDB: ~10-20 ms).
    found = store.query_arrow(
        f"SELECT DISTINCT event_id FROM {store.table(table)} "
        f"WHERE `{ts_column}` BETWEEN fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC') "
        f"AND fromUnixTimestamp64Milli({{hi:Int64}}, 'UTC') AND event_id IN (SELECT event_id FROM {EXTERNAL})",
        {"lo": _epoch_ms(ts_min), "hi": _epoch_ms(ts_max)},
        external=pa.table({"event_id": event_ids}),
    )
    return set(found.column(0).to_pylist()) if found.num_rows else set()


def drop_stored(store: Store, table: str, batch: pa.Table) -> tuple[pa.Table, int]:
    """``batch`` without the rows whose ``event_id`` ``table`` already holds, and how many were dropped."""
    if batch.num_rows == 0:
        return batch, 0
    lo, hi = pc.min_max(batch.column("ts")).values()
    seen = existing_event_ids(store, table, batch.column("event_id"), lo, hi)
    if not seen:
        return batch, 0
    kept = batch.filter(pc.invert(pc.is_in(batch.column("event_id"), pa.array(list(seen), pa.string()))))
    return kept, batch.num_rows - kept.num_rows


def new_events(store: Store, table: str, batch: pa.Table, *, check_store: bool = True) -> pa.Table:
    """``batch`` minus within-batch duplicates and (``check_store``) ids ``table`` already holds.

    The ingest worker calls this with ``check_store=True`` for batches that may be redeliveries
    (read from the pending list / claimed from a dead consumer), and may skip the lookup for
    batches of fresh entries.
    """
    batch = drop_batch_duplicates(batch)
    return drop_stored(store, table, batch)[0] if check_store else batch
