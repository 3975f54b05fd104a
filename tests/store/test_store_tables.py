"""DDL rendering: embedded and cluster from one definition."""

from __future__ import annotations

import re

import pytest

from fleetlens.store.migrations import MIGRATIONS
from fleetlens.store.tables import (
    DATA_TABLES,
    EVENTS_TABLE,
    METRICS_TABLE,
    RenderContext,
    render_create,
    render_database,
    render_migrations_table,
)

EMBEDDED = RenderContext(database="fleetlens")
CLUSTER = RenderContext(database="fleetlens", cluster="fleet3x2")


def _columns(ddl: str) -> list[str]:
    return re.findall(r"^    `(\w+)` ", ddl, flags=re.M)


def test_embedded_is_one_replacing_table_without_cluster_clauses():
    (ddl,) = render_create(EVENTS_TABLE, EMBEDDED)
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS `fleetlens`.`events`\n")
    assert "ENGINE = ReplacingMergeTree()" in ddl
    assert "ORDER BY (kind, service, ts, event_id)" in ddl
    assert "PARTITION BY toDate(ts)" in ddl
    assert "ON CLUSTER" not in ddl and "Replicated" not in ddl and "Distributed" not in ddl
    assert "idx_action_id action_id TYPE bloom_filter" in ddl
    assert "TYPE text(tokenizer = splitByNonAlpha" in ddl


def test_tokenbf_fallback_for_old_servers():
    (ddl,) = render_create(EVENTS_TABLE, RenderContext(database="fleetlens", text_index=False))
    assert "idx_message message TYPE tokenbf_v1(" in ddl and "TYPE text(" not in ddl


@pytest.mark.parametrize("table", DATA_TABLES, ids=lambda t: t.name)
def test_cluster_renders_replicated_local_and_distributed(table):
    local, dist = render_create(table, CLUSTER)
    assert local.startswith(f"CREATE TABLE IF NOT EXISTS `fleetlens`.`{table.name}_local` ON CLUSTER 'fleet3x2'\n")
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'" in local
    assert dist.startswith(f"CREATE TABLE IF NOT EXISTS `fleetlens`.`{table.name}` ON CLUSTER 'fleet3x2'")
    assert f"AS `fleetlens`.`{table.name}_local`" in dist
    assert f"ENGINE = Distributed('fleet3x2', 'fleetlens', '{table.name}_local', {table.shard_key})" in dist
    (embedded,) = render_create(table, EMBEDDED)
    assert _columns(local) == _columns(embedded) == table.column_names
    # Same keys and indexes as embedded: only the name, ON CLUSTER and the engine differ.
    strip = lambda ddl: re.sub(r"ENGINE = .*", "", ddl.split("\n", 1)[1])  # noqa: E731
    assert strip(local) == strip(embedded)


def test_sharding_keys():
    assert "cityHash64(if(action_id = '', event_id, action_id))" in render_create(EVENTS_TABLE, CLUSTER)[1]
    assert render_create(METRICS_TABLE, CLUSTER)[1].endswith("cityHash64(host))")


def test_rejections_keep_latest_version_in_cluster_too():
    from fleetlens.store.tables import REJECTIONS_TABLE

    assert "ReplacingMergeTree(received_at)" in render_create(REJECTIONS_TABLE, EMBEDDED)[0]
    assert "'{replica}', received_at)" in render_create(REJECTIONS_TABLE, CLUSTER)[0]


def test_cluster_database_and_migrations_table():
    assert render_database(CLUSTER) == "CREATE DATABASE IF NOT EXISTS `fleetlens` ON CLUSTER 'fleet3x2'"
    ddl = render_migrations_table(CLUSTER)
    assert "ON CLUSTER 'fleet3x2'" in ddl
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{table}', '{shard}-{replica}')" in ddl


def test_every_migration_statement_is_idempotent():
    for ctx in (EMBEDDED, CLUSTER):
        for migration in MIGRATIONS:
            for stmt in migration.statements(ctx):
                # the rollup backfills are idempotent by their min/max aggregation or replacing key
                backfill = stmt.startswith(("INSERT INTO `fleetlens`.`action_index` ", "INSERT INTO `fleetlens`.`users_1m` ",
                                              "INSERT INTO `fleetlens`.`payment_attempts` "))
                # setting table settings to fixed values again, or rebuilding a projection, changes nothing
                same_again = (" MODIFY SETTING " in stmt
                              or " MATERIALIZE PROJECTION " in stmt or " MATERIALIZE COLUMN " in stmt)
                assert "IF NOT EXISTS" in stmt or backfill or same_again, stmt


def test_action_index_view_reads_local_events_in_a_cluster():
    from fleetlens.store.tables import render_action_index

    table, dist, view, backfill = render_action_index(CLUSTER)
    assert "ReplicatedAggregatingMergeTree(" in table and "`action_index_local`" in table
    assert "Distributed('fleet3x2', 'fleetlens', 'action_index_local', cityHash64(action_id))" in dist
    assert "ON CLUSTER 'fleet3x2' TO `fleetlens`.`action_index_local`" in view
    assert "FROM `fleetlens`.`events_local`" in view
    assert backfill.startswith("INSERT INTO `fleetlens`.`action_index` ") and "FROM `fleetlens`.`events` " in backfill
    embedded = render_action_index(EMBEDDED)
    assert len(embedded) == 3 and "AggregatingMergeTree()" in embedded[0] and "ON CLUSTER" not in embedded[1]
