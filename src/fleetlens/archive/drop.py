"""Leaving the hot store: a verified day partition moves to the staging twin, then is dropped.

``MOVE PARTITION … TO TABLE {name}_archiving`` is atomic: from that instant queries no longer see the
day in the hot table, and rows inserted later (late events) start a new hot partition instead of
being dropped unverified. The staging partition is dropped only after the manifest naming the
verified files is written. In a cluster every statement runs ``ON CLUSTER`` on the local tables
(the DDL comes from ``store/tables.py``).
"""

from __future__ import annotations

import datetime as dt

from fleetlens.archive.export import day_rows_sql
from fleetlens.archive.families import ROLLUPS_OF_EVENTS, Family, partition_id
from fleetlens.store.client import Store
from fleetlens.store.tables import (
    local_name,
    render_add_projections,
    render_create,
    render_drop_partition,
    render_move_partition,
)

DDL_TIMEOUT_S = 600.0


def ensure_staging(store: Store, fam: Family) -> None:
    """Create the staging twin if missing, with the hot table's projections (a twin created before they were
    defined gets them here: a partition moves only between tables of one structure). Idempotent."""
    for stmt in render_create(fam.staging, store.render_context):
        store.command(stmt)
    for stmt in render_add_projections(fam.staging, store.render_context, materialize=False):  # rows only pass through
        store.command(stmt, timeout_s=DDL_TIMEOUT_S)


def hot_partitions(store: Store, fam: Family, before: dt.date) -> list[dt.date]:
    """Days before ``before`` with rows in the hot table or its staging twin, oldest first."""
    t = f"`{fam.time_column}`"
    out = set()
    for table in (fam.name, fam.staging.name):
        tbl = store.query_arrow(
            f"SELECT DISTINCT toDate({t}) AS d FROM {store.table(table)} WHERE {t} < toDateTime64('{before.isoformat()}', 3, 'UTC')"
        )
        out.update(tbl.column("d").to_pylist() if tbl.num_rows else [])
    return sorted(out)


def move_to_staging(store: Store, fam: Family, day: dt.date) -> None:
    """Move the day's hot partition into the staging twin (atomic; nothing happens if it has none)."""
    store.command(render_move_partition(fam.table, fam.staging, store.render_context, partition_id(day)), timeout_s=DDL_TIMEOUT_S)


def unstage(store: Store, fam: Family, day: dt.date) -> None:
    """Move the day's staged rows (left by an interrupted run) back into the hot table (atomic; a no-op without)."""
    store.command(render_move_partition(fam.staging, fam.table, store.render_context, partition_id(day)), timeout_s=DDL_TIMEOUT_S)


def staged_rows(store: Store, fam: Family, day: dt.date) -> int:
    """Rows (one per key) of the day in the staging twin."""
    keys = ", ".join(f"`{c}`" for c in fam.table.order_by)
    return int(store.query_scalar(
        f"SELECT count() FROM (SELECT {keys} FROM {store.table(fam.staging.name)} FINAL WHERE {fam.day_filter(day)})"
    ) or 0)


def hot_rows(store: Store, fam: Family, day: dt.date) -> int:
    """Rows (one per key) of the day in the hot table and the staging twin together."""
    keys = ", ".join(f"`{c}`" for c in fam.table.order_by)
    return int(store.query_scalar(f"SELECT count() FROM ({day_rows_sql(store, fam, day, columns=keys)})") or 0)


def drop_staged(store: Store, fam: Family, day: dt.date) -> None:
    """Drop the day's partition of the staging twin (on every shard)."""
    store.command(render_drop_partition(fam.staging, store.render_context, partition_id(day)), timeout_s=DDL_TIMEOUT_S)


def drop_rollups(store: Store, day: dt.date) -> None:
    """Drop the events rollups' partition of an archived events day (queries recompute it from the archive)."""
    for table in ROLLUPS_OF_EVENTS:
        store.command(render_drop_partition(table, store.render_context, partition_id(day)), timeout_s=DDL_TIMEOUT_S)


def partition_bytes(store: Store, fam: Family, day: dt.date) -> tuple[int, int]:
    """(compressed, uncompressed) bytes of the day's active parts in the hot and staging tables."""
    ctx = store.render_context
    parts = f"cluster('{ctx.cluster}', system.parts)" if ctx.cluster else "system.parts"
    names = [local_name(fam.table, ctx), local_name(fam.staging, ctx)]
    row = store.query_arrow(
        f"SELECT sum(data_compressed_bytes) AS c, sum(data_uncompressed_bytes) AS u FROM {parts} "
        "WHERE database = {db:String} AND table IN {names:Array(String)} AND partition_id = {pid:String} AND active",
        {"db": store.database, "names": names, "pid": partition_id(day)},
    ).to_pylist()[0]
    return int(row["c"] or 0), int(row["u"] or 0)
