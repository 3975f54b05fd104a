"""Cluster mode against the real engines that run here.

ClickHouse: the cluster DDL rendered for 3 shards x 2 replicas is created in a real chDB and read
back from its system tables next to the embedded DDL (tests/deploy/chdb_cluster.py says what chDB
cannot run: ON CLUSTER, a Keeper); fleetlens' store, inserts and per-shard status then run over
Distributed tables of a one-shard local cluster. Kafka: per-partition lag and replica health from
a real broker. What needs a real cluster is in docs/deploy.md (deploy/compose/smoke.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetlens.store.tables import ACTION_INDEX_TABLE, ALERTS_TABLE, DATA_TABLES, PAYMENT_ATTEMPTS_TABLE, USERS_1M_TABLE

FAMILIES = [*DATA_TABLES, ACTION_INDEX_TABLE, USERS_1M_TABLE, PAYMENT_ATTEMPTS_TABLE, ALERTS_TABLE]


@pytest.fixture(scope="module")
def chdb_result(tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("chdb-cluster")
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("chdb_cluster.py")), str(workdir)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _by(rows: list[dict], table: str, keys: tuple[str, ...]) -> list[tuple]:
    return [tuple(r[k] for k in keys) for r in rows if r["table"] == table]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda t: t.name)
def test_cluster_tables_match_the_embedded_ones(chdb_result: dict, family) -> None:
    emb, clu = chdb_result["embedded"], chdb_result["cluster"]
    col_keys = ("name", "type", "compression_codec", "default_expression", "position")
    expected = _by(emb["columns"], family.name, col_keys)
    assert expected, f"embedded {family.name} has no columns"
    assert _by(clu["columns"], f"{family.name}_local", col_keys) == expected
    assert _by(clu["columns"], family.name, col_keys) == expected  # the Distributed table
    idx_keys = ("name", "type_full", "expr", "granularity")
    assert _by(clu["indexes"], f"{family.name}_local", idx_keys) == _by(emb["indexes"], family.name, idx_keys)
    emb_t = next(t for t in emb["tables"] if t["name"] == family.name)
    loc_t = next(t for t in clu["tables"] if t["name"] == f"{family.name}_local")
    for key in ("sorting_key", "partition_key", "primary_key"):
        assert loc_t[key] == emb_t[key], key
    assert loc_t["engine"] == emb_t["engine"]  # chDB ran the plain engine; the Replicated clause is checked below
    dist = next(t for t in clu["tables"] if t["name"] == family.name)
    assert dist["engine"] == "Distributed"
    assert dist["engine_full"] == f"Distributed('fleetlens', 'clustered', '{family.name}_local', {family.shard_key})"


def test_every_family_has_an_index_set_in_both_modes(chdb_result: dict) -> None:
    names = {r["name"] for r in chdb_result["embedded"]["indexes"] if r["table"] == "events"}
    assert {"idx_action_id", "idx_user_id", "idx_level", "idx_message"} <= names


def test_rendered_cluster_ddl_is_on_cluster_and_replicated(chdb_result: dict) -> None:
    statements = chdb_result["cluster_statements"]
    creates = [s for s in statements if s.startswith("CREATE")]
    assert creates and all(" ON CLUSTER 'fleetlens'" in s for s in creates)
    for family in FAMILIES:
        local = next(s for s in creates if f"`clustered`.`{family.name}_local` ON CLUSTER" in s)
        version = f", {family.version_column}" if family.version_column else ""
        assert f"ENGINE = Replicated{family.engine}('/clickhouse/tables/{{shard}}/{{database}}/{{table}}', '{{replica}}'{version})" in local
    migrations = next(s for s in creates if "`schema_migrations`" in s)
    assert "'/clickhouse/tables/all/{database}/{table}', '{shard}-{replica}'" in migrations
    views = [s for s in creates if "MATERIALIZED VIEW" in s]
    assert len(views) == 3 and all("_local`" in v.split(" AS ", 1)[0] and "FROM `clustered`.`events_local`" in v for v in views)


def test_cluster_definition_is_three_shards_of_two_replicas(chdb_result: dict) -> None:
    fl = [(r["shard_num"], r["replica_num"]) for r in chdb_result["clusters"] if r["cluster"] == "fleetlens"]
    assert fl == [(s, r) for s in (1, 2, 3) for r in (1, 2)]


def test_store_inserts_and_status_over_distributed_tables(chdb_result: dict) -> None:
    rt = chdb_result["runtime"]
    assert rt["distributed_count"] == 3000 and rt["local_count"] == 3000  # the redelivered 500 collapse (FINAL)
    assert rt["action_index"] >= 100  # the materialized view on events_local filled action_index_local
    assert rt["overview_events"] == 2999  # ts = base + i s, i = 1 … 2999 inside [base + 0.5 s, base + 3000.5 s)
    rows = {r["table"]: r for r in rt["shard_rows"]}
    assert rows["events_local"]["rows"] == 3500 and rows["events_local"]["shard"] == "1" and rows["events_local"]["answered"]
    # purchases i = 0..19 with 1 + i % 3 attempts, provider prov-(i % 2), the last attempt succeeding for odd i; a
    # redelivered copy of the first 10 attempts changes nothing
    want = {}
    for i in range(20):
        n = 1 + i % 3
        if n > 1:
            p, r = want.get(f"prov-{i % 2}", (0, 0, 0, 0)), i % 2
            want[f"prov-{i % 2}"] = (p[0] + 1, p[1] + r, p[2] + 1 - r, p[3] + n)
    assert rt["retries"] == sorted([[k, *v] for k, v in want.items()])
    assert rt["active_users"] == {k: v for k, v in rt["active_users_rows"].items()} and len(rt["active_users"]) >= 2


def test_kafka_partitions_report_lag_and_replicas_per_partition(kafka_broker) -> None:
    from confluent_kafka import Consumer, TopicPartition

    from fleetlens.cluster_status import kafka_partitions
    from fleetlens.settings import Settings
    from fleetlens.sources.kafka import KafkaSink, client_config, ensure_topics

    settings = Settings(mq="kafka", streams=["deploy.status"], kafka={"bootstrap": kafka_broker.bootstrap, "partitions": 3})
    ensure_topics(settings.kafka, ["deploy.status"])
    sink = KafkaSink(settings.kafka)
    sink.send("deploy.status", [b"x"] * 30, keys=[str(i) for i in range(30)])
    sink.close()
    rows = kafka_partitions(settings, ["g-deploy"])
    assert [r["partition"] for r in rows] == [0, 1, 2]
    ends = {r["partition"]: r["end_offset"] for r in rows}
    assert sum(ends.values()) == 30 and all(r["behind.g-deploy"] == r["end_offset"] for r in rows)
    assert all(r["replicas"] == 1 and r["in_sync"] == 1 and r["leader"] >= 0 for r in rows)

    committer = Consumer({**client_config(settings.kafka), "group.id": "g-deploy", "enable.auto.commit": False})
    committer.commit(offsets=[TopicPartition("deploy.status", 0, ends[0]), TopicPartition("deploy.status", 1, 1)], asynchronous=False)
    committer.close()
    after = {r["partition"]: r for r in kafka_partitions(settings, ["g-deploy"])}
    assert after[0]["behind.g-deploy"] == 0 and after[0]["committed.g-deploy"] == ends[0]
    assert after[1]["behind.g-deploy"] == ends[1] - 1
    assert after[2]["behind.g-deploy"] == ends[2] and after[2]["committed.g-deploy"] is None
