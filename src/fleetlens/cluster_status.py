"""Health and lag of a deployment, per ClickHouse shard/replica and per Kafka partition.

Used by ``fleetlens status``. Both read from outside: nothing here joins a consumer group (that
would rebalance the workers) or writes to the store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetlens.settings import Settings
    from fleetlens.store.client import Store

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def shard_rows(store: Store, cluster: str) -> list[dict[str, Any]]:
    """Rows of every ``*_local`` table on every replica of ``cluster``, and replicas that did not answer.

    One row per (shard, replica, table) from ``clusterAllReplicas`` over ``system.parts`` (active
    parts: cheap, no scan), plus a row with ``table = None`` and ``answered = False`` for each
    replica listed in ``system.clusters`` that did not answer. Shard and replica are the nodes'
    macros.
    """
    if not _NAME.match(cluster):
        raise ValueError(f"cluster name {cluster!r}: letters, digits, '_', '.', '-' only")
    listed = store.query_arrow(
        "SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = {c:String} "
        "ORDER BY shard_num, replica_num",
        {"c": cluster},
    ).to_pylist()
    if not listed:
        raise ValueError(f"the server knows no cluster {cluster!r} (system.clusters)")
    rows = store.query_arrow(
        "SELECT getMacro('shard') AS shard, getMacro('replica') AS replica, hostName() AS host, table, "
        "sum(rows) AS rows, count() AS parts "
        f"FROM clusterAllReplicas('{cluster}', system.parts) "
        "WHERE database = {db:String} AND active AND endsWith(table, '_local') "
        "GROUP BY shard, replica, host, table ORDER BY shard, replica, table "
        "SETTINGS skip_unavailable_shards = 1",
        {"db": store.database},
    ).to_pylist()
    out = [{**r, "answered": True} for r in rows]
    per_shard: dict[str, set[str]] = {}
    for r in rows:
        per_shard.setdefault(str(r["shard"]), set()).add(r["host"])
    for shard in sorted({r["shard_num"] for r in listed}):
        expected = sum(1 for r in listed if r["shard_num"] == shard)
        missing = expected - len(per_shard.get(str(shard), set()))
        for _ in range(max(0, missing)):
            out.append({"shard": str(shard), "replica": "?", "host": "-", "table": None, "rows": None, "parts": None, "answered": False})
    return out


def replication_state(store: Store, cluster: str) -> list[dict[str, Any]]:
    """Per replicated table on every answering replica: read-only?, delay, queue, active/total replicas."""
    if not _NAME.match(cluster):
        raise ValueError(f"cluster name {cluster!r}: letters, digits, '_', '.', '-' only")
    return store.query_arrow(
        "SELECT getMacro('shard') AS shard, getMacro('replica') AS replica, table, is_readonly, "
        "absolute_delay, queue_size, active_replicas, total_replicas "
        f"FROM clusterAllReplicas('{cluster}', system.replicas) WHERE database = {{db:String}} "
        "ORDER BY shard, replica, table SETTINGS skip_unavailable_shards = 1",
        {"db": store.database},
    ).to_pylist()


def kafka_partitions(settings: Settings, groups: Sequence[str], timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """Per partition of the event topics: leader, replicas, in-sync replicas, end offset, and per group
    the committed offset and how many messages it has not committed yet (``behind.<group>``).

    A group that never committed on a partition is behind by everything still in it.
    """
    from confluent_kafka import Consumer, TopicPartition

    from fleetlens.sources.kafka import client_config, committed_offsets

    consumers = {g: Consumer({**client_config(settings.kafka), "group.id": g, "enable.auto.commit": False}) for g in groups}
    try:
        probe = next(iter(consumers.values())) if consumers else Consumer({**client_config(settings.kafka), "group.id": "fleetlens-status"})
        metadata = probe.list_topics(timeout=timeout_s)
        out: list[dict[str, Any]] = []
        for topic in settings.streams:
            meta = metadata.topics.get(topic)
            if meta is None or meta.error is not None:
                out.append({"topic": topic, "partition": None, "error": str(meta.error) if meta else "no such topic"})
                continue
            tps = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
            committed = {g: {tp.partition: tp.offset for tp in committed_offsets(c, tps, timeout_s)} for g, c in consumers.items()}
            for tp in tps:
                pm = meta.partitions[tp.partition]
                low, high = probe.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
                row: dict[str, Any] = {
                    "topic": topic, "partition": tp.partition, "leader": pm.leader, "replicas": len(pm.replicas),
                    "in_sync": len(pm.isrs), "end_offset": high, "error": None,
                }
                for g in groups:
                    offset = committed[g].get(tp.partition, -1)
                    row[f"committed.{g}"] = offset if offset >= 0 else None
                    row[f"behind.{g}"] = max(0, high - (offset if offset >= 0 else low))
                out.append(row)
        return out
    finally:
        for c in consumers.values():
            c.close()
        if not consumers:
            probe.close()
