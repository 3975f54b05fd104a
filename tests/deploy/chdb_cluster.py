"""Runs fleetlens' cluster DDL in a real chDB configured with cluster definitions; prints JSON.

Run as its own process (``python chdb_cluster.py WORKDIR``): chDB takes its configuration when
the engine starts, once per process. What chDB can and cannot do here (measured, chDB 4.4):

* ``ON CLUSTER`` is refused ("Replicated DDL queries are disabled": no distributed DDL worker),
  so it is stripped from the statements;
* ``Replicated*MergeTree`` needs a keeper, and chDB cannot use one: without a ``zookeeper``
  section the CREATE is refused (NO_ZOOKEEPER); with the ``testkeeper`` implementation or a real
  ZooKeeper 3.9 on loopback a table is created read-only (inserts fail with TABLE_IS_READ_ONLY,
  a whole schema hung past 120 s); with an address nothing listens on the CREATE fails;
* ``Distributed`` tables work over a cluster whose one shard is this process (localhost, the
  configured tcp_port): inserts and selects run in-process.

So both checks run the cluster DDL with ON CLUSTER stripped and each ``Replicated*MergeTree(path,
replica[, version])`` swapped for its plain engine (the tests assert the Replicated clauses on the
rendered text): the DDL check over the 3 x 2 cluster definition, read back from the system
tables; the runtime check over a one-shard local cluster, where Distributed inserts and selects run.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import chdb

from fleetlens.store.migrations import MIGRATIONS
from fleetlens.store.tables import RenderContext, render_database, render_migrations_table

CONFIG = """<clickhouse>
  <tcp_port>9000</tcp_port>
  <macros><cluster>fleetlens</cluster><shard>1</shard><replica>r1</replica></macros>
  <remote_servers>
    <fleetlens>
{shards}
    </fleetlens>
    <local1>
      <shard><internal_replication>true</internal_replication><replica><host>localhost</host><port>9000</port></replica></shard>
    </local1>
  </remote_servers>
</clickhouse>
"""
# 3 shards x 2 replicas on ports nothing listens on: creating a Distributed table never connects.
SHARDS = "\n".join(
    "      <shard><internal_replication>true</internal_replication>"
    + "".join(f"<replica><host>127.0.0.1</host><port>{9100 + 2 * s + r}</port></replica>" for r in (1, 2))
    + "</shard>"
    for s in range(3)
)
_ON_CLUSTER = re.compile(r" ON CLUSTER '[^']+'")
_REPLICATED = re.compile(r"Replicated(\w+MergeTree)\('[^']*', '[^']*'(?:, )?")


def runnable(stmt: str) -> str:
    """``stmt`` as chDB can run it: no ON CLUSTER, plain engines instead of Replicated ones."""
    return _REPLICATED.sub(r"\1(", _ON_CLUSTER.sub("", stmt))


def statements(ctx: RenderContext, *, backfills: bool) -> list[str]:
    """Every statement of the schema for ``ctx``, in migration order."""
    out = [render_database(ctx), render_migrations_table(ctx)]
    for migration in MIGRATIONS:
        out += [s for s in migration.statements(ctx) if backfills or not s.startswith("INSERT")]
    return out


def schema(conn, database: str) -> dict:
    """What the system tables say about ``database``'s tables, columns and skip indexes."""

    def rows(sql: str) -> list[dict]:
        return json.loads(conn.query(sql, "JSON").bytes())["data"]

    return {
        "tables": rows(
            "SELECT name, engine, engine_full, sorting_key, partition_key, primary_key, as_select FROM system.tables "
            f"WHERE database = '{database}' ORDER BY name"
        ),
        "columns": rows(
            "SELECT table, name, type, compression_codec, default_expression, position FROM system.columns "
            f"WHERE database = '{database}' ORDER BY table, position"
        ),
        "indexes": rows(
            "SELECT table, name, type_full, expr, granularity FROM system.data_skipping_indices "
            f"WHERE database = '{database}' ORDER BY table, name"
        ),
    }


def runtime(path: Path, ctx: RenderContext) -> dict:
    """fleetlens' own store code over the Distributed tables of a one-shard local cluster."""
    import pyarrow as pa

    from fleetlens.cluster_status import shard_rows
    from fleetlens.store.client import CLUSTER_INSERT_SETTINGS, EmbeddedStore

    store = EmbeddedStore(path, ctx.database)  # shares this process' engine (and its config)
    store.render_context = ctx
    try:
        n = 3000
        batch = pa.table({
            "event_id": [f"e{i}" for i in range(n)],
            "ts": pa.array([1_795_000_000_000 + i * 1000 for i in range(n)], pa.timestamp("ms", tz="UTC")),
            "kind": ["log"] * n,
            "service": ["checkout"] * n,
            "action_id": [f"a{i % 100}" for i in range(n)],
        })
        store.insert_arrow("events", batch, settings=CLUSTER_INSERT_SETTINGS)
        store.insert_arrow("events", batch.slice(0, 500), settings=CLUSTER_INSERT_SETTINGS)  # a redelivery
        out = {
            "distributed_count": store.query_scalar("SELECT count() FROM events FINAL"),
            "local_count": store.query_scalar("SELECT count() FROM events_local FINAL"),
            "action_index": store.query_scalar("SELECT count() FROM action_index"),
            "shard_rows": shard_rows(store, "local1"),
        }
        # the ingest overview through the Distributed table: whole minutes from events_local's events_1m
        # projection (rebuilt by the merge that collapses the redelivery), the partial ends from rows
        from fleetlens.query.common import from_ms
        from fleetlens.query.ingest import ingest_overview

        store.command("OPTIMIZE TABLE events_local FINAL")
        overview = ingest_overview(store, start=from_ms(1_795_000_000_500), end=from_ms(1_795_003_000_500), interval="5m")
        out["overview_events"] = overview.meta["totals"]["events"]

        # payment retries (the payment_attempts rollup, filled by its view on events_local) and active users (the
        # active_1m projection of events_local) through the Distributed tables; purchase i has 1 + i % 3 attempts
        from fleetlens.query.business import business_metrics
        from fleetlens.query.perf import resources

        attempts = [(i, a) for i in range(20) for a in range(1, 2 + i % 3)]
        base = 1_795_000_000_000
        pay = pa.table({
            "event_id": [f"p{i}-{a}" for i, a in attempts],
            "ts": pa.array([base + 60_000 + i * 20_000 + a * 5_000 for i, a in attempts], pa.timestamp("ms", tz="UTC")),
            "kind": ["business"] * len(attempts),
            "service": ["payment"] * len(attempts),
            "operation": ["payment_attempt"] * len(attempts),
            "action_id": [f"buy{i}" for i, _ in attempts],
            "user_id": [f"u{i % 7}" for i, _ in attempts],
            "provider": [f"prov-{i % 2}" for i, _ in attempts],
            "attempt": pa.array([a for _, a in attempts], pa.int64()),
            "outcome": ["success" if a == 1 + i % 3 and i % 2 else "failure" for i, a in attempts],
        })
        store.insert_arrow("events", pay, settings=CLUSTER_INSERT_SETTINGS)
        store.insert_arrow("events", pay.slice(0, 10), settings=CLUSTER_INSERT_SETTINGS)  # a redelivery
        rng = {"start": from_ms(base + 500), "end": from_ms(base + 3_000_500)}
        retries = business_metrics(store, **rng, interval="1h").tables["retries"].to_pylist()
        out["retries"] = sorted((r["provider"], r["retries"], r["succeeded"], r["failed"], r["attempts"]) for r in retries)
        active = resources(store, **rng, interval="5m").tables["active_users"].to_pylist()
        out["active_users"] = {int(r["bucket"].timestamp() * 1000): r["active_users"] for r in active if r["active_users"]}
        rows = store.query_arrow(
            "SELECT intDiv(toUnixTimestamp64Milli(ts), 300000) * 300000 AS b, "
            "uniqExact(user_id) AS n FROM events WHERE kind = 'business' GROUP BY b SETTINGS optimize_use_projections = 0")
        out["active_users_rows"] = {r["b"]: r["n"] for r in rows.to_pylist()}
        return out
    finally:
        store.close()


def main(workdir: Path) -> None:
    config = workdir / "config.xml"
    config.write_text(CONFIG.format(shards=SHARDS))
    conn = chdb.connect(f"file:{workdir / 'data'}?config-file={config}")
    result: dict = {}

    embedded = RenderContext(database="embedded")
    for stmt in statements(embedded, backfills=True):
        conn.query(stmt)
    result["embedded"] = schema(conn, "embedded")

    cluster = RenderContext(database="clustered", cluster="fleetlens")
    rendered = statements(cluster, backfills=False)
    for stmt in rendered:
        conn.query(runnable(stmt))
    result["cluster"] = schema(conn, "clustered")
    result["cluster_statements"] = rendered
    result["clusters"] = json.loads(
        conn.query("SELECT cluster, shard_num, replica_num, is_local FROM system.clusters ORDER BY cluster, shard_num, replica_num", "JSON").bytes()
    )["data"]

    local = RenderContext(database="runtime", cluster="local1")
    for stmt in statements(local, backfills=True):
        conn.query(runnable(stmt))
    result["runtime"] = runtime(workdir / "data", local)
    conn.close()
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
