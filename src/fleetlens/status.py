"""``fleetlens status``: what the store holds and how far each consumer group is behind."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from fleetlens.settings import Settings
from fleetlens.sources.redis import connect
from fleetlens.store import tables
from fleetlens.store.client import open_store


def store_summary(settings: Settings) -> dict[str, object]:
    """Row counts per table and kind, time span, and the most frequent rejection reasons."""
    store = open_store(settings)
    try:
        by_kind = store.query_arrow(
            f"SELECT kind, count() AS n, min(ts) AS first, max(ts) AS last FROM {tables.EVENTS} GROUP BY kind ORDER BY kind"
        ).to_pylist()
        metrics = store.query_arrow(
            f"SELECT count() AS n, min(ts) AS first, max(ts) AS last FROM {tables.METRICS}"
        ).to_pylist()[0]
        rejections = store.query_arrow(
            f"SELECT field, count() AS n, any(reason) AS example FROM {tables.REJECTIONS} "
            "GROUP BY field ORDER BY n DESC LIMIT 10"
        ).to_pylist()
    finally:
        store.close()
    return {"events": by_kind, "metrics": metrics, "rejections": rejections}


def mq_lag(settings: Settings) -> list[dict[str, object]]:
    """Per stream and consumer group: entries undelivered and pending (delivered, not acknowledged)."""
    client = connect(settings.redis.url, socket_connect_timeout=2)
    rows = []
    try:
        for stream in settings.streams:
            if not client.exists(stream):
                rows.append({"stream": stream, "group": "-", "undelivered": 0, "pending": 0, "length": 0})
                continue
            length = client.xlen(stream)
            for info in client.xinfo_groups(stream):
                rows.append(
                    {
                        "stream": stream,
                        "group": info["name"].decode(),
                        "undelivered": info.get("lag"),
                        "pending": info["pending"],
                        "length": length,
                    }
                )
        rows.append({"stream": settings.dlq_stream, "group": "(dead letters)", "undelivered": None, "pending": None,
                     "length": client.xlen(settings.dlq_stream)})
    finally:
        client.close()
    return rows


def _when(value: object) -> str:
    return value.isoformat(sep=" ", timespec="milliseconds") if hasattr(value, "isoformat") else "-"


def print_status(settings: Settings) -> bool:
    """Print the store summary, per-shard rows (cluster) and the MQ lag (per partition on Kafka) as
    tables; unreachable parts are reported, not fatal. Returns False when a part could not be read.
    """
    console = Console()
    ok = True
    try:
        summary = store_summary(settings)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        ok = False
        console.print(f"[red]store unavailable[/]: {exc} (a running `fleetlens up` holds the embedded store)")
    else:
        table = Table(title=f"store ({settings.clickhouse_url or settings.chdb_path})")
        for column in ("table", "kind", "rows", "first", "last"):
            table.add_column(column)
        for row in summary["events"]:  # type: ignore[union-attr]
            table.add_row("events", row["kind"], f"{row['n']:,}", _when(row["first"]), _when(row["last"]))
        m = summary["metrics"]
        table.add_row("metrics", "metric", f"{m['n']:,}", _when(m["first"] if m["n"] else None), _when(m["last"] if m["n"] else None))  # type: ignore[index]
        console.print(table)
        if summary["rejections"]:
            rejected = Table(title="rejections by field")
            for column in ("field", "count", "example reason"):
                rejected.add_column(column)
            for row in summary["rejections"]:  # type: ignore[union-attr]
                rejected.add_row(row["field"], f"{row['n']:,}", row["example"])
            console.print(rejected)
    if settings.cluster and settings.clickhouse_url:
        ok = _print_shards(console, settings) and ok
    if settings.mq == "kafka":
        return _print_kafka(console, settings) and ok
    try:
        lag = mq_lag(settings)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        console.print(f"[red]MQ unavailable[/] at {settings.redis.url}: {exc}")
        return False
    table = Table(title=f"MQ ({settings.redis.url})")
    for column in ("stream", "group", "length", "undelivered", "pending"):
        table.add_column(column)
    for row in lag:
        table.add_row(*(str(row[c]) if row[c] is not None else "-" for c in ("stream", "group", "length", "undelivered", "pending")))
    console.print(table)
    return ok


def _print_shards(console: Console, settings: Settings) -> bool:
    from fleetlens.cluster_status import replication_state, shard_rows

    try:
        store = open_store(settings, migrate=False)
        try:
            rows = shard_rows(store, settings.cluster)  # type: ignore[arg-type]
            replication = replication_state(store, settings.cluster)  # type: ignore[arg-type]
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - shown to the user
        console.print(f"[red]cluster {settings.cluster} unavailable[/]: {exc}")
        return False
    table = Table(title=f"cluster {settings.cluster}: rows per shard and replica")
    for column in ("shard", "replica", "host", "table", "rows", "parts"):
        table.add_column(column)
    for r in rows:
        if r["answered"]:
            table.add_row(str(r["shard"]), str(r["replica"]), r["host"], r["table"], f"{r['rows']:,}", str(r["parts"]))
        else:
            table.add_row(str(r["shard"]), "[red]?[/]", "-", "[red]replica did not answer[/]", "-", "-")
    console.print(table)
    lagging = [r for r in replication if r["is_readonly"] or r["absolute_delay"] or r["queue_size"] or r["active_replicas"] < r["total_replicas"]]
    if lagging:
        rep = Table(title="replication: tables read-only, behind, or missing a replica")
        for column in ("shard", "replica", "table", "read-only", "delay s", "queue", "active/total"):
            rep.add_column(column)
        for r in lagging:
            rep.add_row(str(r["shard"]), str(r["replica"]), r["table"], str(bool(r["is_readonly"])), str(r["absolute_delay"]),
                        str(r["queue_size"]), f"{r['active_replicas']}/{r['total_replicas']}")
        console.print(rep)
    return all(r["answered"] for r in rows) and not lagging


def _print_kafka(console: Console, settings: Settings) -> bool:
    from fleetlens.cluster_status import kafka_partitions

    groups = [settings.ingest.group, settings.detect.group]
    try:
        rows = kafka_partitions(settings, groups)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        console.print(f"[red]Kafka unavailable[/] at {settings.kafka.bootstrap}: {exc}")
        return False
    table = Table(title=f"Kafka ({settings.kafka.bootstrap}): per partition")
    for column in ("topic", "partition", "leader", "in-sync/replicas", "end offset", *(f"{g} behind" for g in groups)):
        table.add_column(column)
    healthy = True
    for r in rows:
        if r["error"]:
            healthy = False
            table.add_row(r["topic"], "-", "-", "-", "-", *("-" for _ in groups), end_section=False)
            console.print(f"[red]{r['topic']}[/]: {r['error']}")
            continue
        under = r["in_sync"] < r["replicas"] or r["leader"] < 0
        healthy = healthy and not under
        isr = f"{r['in_sync']}/{r['replicas']}"
        table.add_row(r["topic"], str(r["partition"]), str(r["leader"]), f"[red]{isr}[/]" if under else isr,
                      f"{r['end_offset']:,}", *(f"{r[f'behind.{g}']:,}" for g in groups))
    console.print(table)
    return healthy
