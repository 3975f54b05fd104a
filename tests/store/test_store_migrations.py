"""Schema creation and migrations are idempotent and recorded."""

from __future__ import annotations

from fleetlens.store.migrations import MIGRATIONS, Migration, applied_versions, ensure_schema


def _schema(store) -> list[tuple[str, str]]:
    tbl = store.query_arrow(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String} ORDER BY name",
        {"db": store.database},
    )
    return list(zip(tbl.column(0).to_pylist(), tbl.column(1).to_pylist()))


def test_twice_changes_nothing(store):
    before = _schema(store)
    assert {n for n, _ in before} == {
        "events", "metrics", "rejections", "schema_migrations", "action_index", "action_index_mv", "alerts",
        "users_1m", "users_1m_mv", "payment_attempts", "payment_attempts_mv",
    }
    assert ensure_schema(store) == []
    assert _schema(store) == before
    assert applied_versions(store) == {m.version for m in MIGRATIONS}
    assert store.query_scalar("SELECT count() FROM schema_migrations") == len(MIGRATIONS)


def test_a_new_migration_runs_once(store):
    extra = Migration(
        99, "add a column", lambda ctx: [f"ALTER TABLE `{ctx.database}`.`events` ADD COLUMN IF NOT EXISTS extra String"]
    )
    assert ensure_schema(store, (*MIGRATIONS, extra)) == [99]
    assert ensure_schema(store, (*MIGRATIONS, extra)) == []
    assert store.query_scalar("SELECT count() FROM system.columns WHERE database = 'fleetlens' AND table = 'events' AND name = 'extra'") == 1
    assert 99 in applied_versions(store)


def test_action_index_follows_inserts(store):
    import pyarrow as pa

    from fleetlens.contract.schema import EVENTS_SCHEMA

    def rows(ids_ts):
        cols = {f.name: [] for f in EVENTS_SCHEMA}
        for event_id, action_id, ts in ids_ts:
            for f in EVENTS_SCHEMA:
                cols[f.name].append({"event_id": event_id, "action_id": action_id, "ts": ts, "kind": "log"}.get(
                    f.name, [] if f.name == "attrs" else (None if f.nullable else "")))
        return pa.table(cols, schema=EVENTS_SCHEMA)

    store.insert_arrow("events", rows([("e1", "a1", 1_000), ("e2", "a1", 5_000), ("e3", "", 9_000)]))
    store.insert_arrow("events", rows([("e4", "a1", 500), ("e5", "a2", 7_000)]))
    tbl = store.query_arrow(
        "SELECT action_id, toUnixTimestamp64Milli(min(ts_min)) lo, toUnixTimestamp64Milli(max(ts_max)) hi "
        "FROM action_index GROUP BY action_id ORDER BY action_id"
    )
    assert tbl.to_pylist() == [{"action_id": "a1", "lo": 500, "hi": 5_000}, {"action_id": "a2", "lo": 7_000, "hi": 7_000}]


def test_rollups_are_backfilled_from_events_stored_before_them(tmp_path):
    from fleetlens.simulate.runner import generate_payloads
    from fleetlens.contract.decode import decode_payloads
    from fleetlens.store.client import EmbeddedStore

    # the `store` fixture is not used: this one stops after migration 1
    s = EmbeddedStore(tmp_path / "old", "fleetlens")
    try:
        ensure_schema(s, MIGRATIONS[:1])
        s.insert_arrow("events", decode_payloads(generate_payloads(3000, seed=2)).events)
        assert ensure_schema(s) == [m.version for m in MIGRATIONS[1:]]
        want = s.query_scalar("SELECT uniqExact(action_id) FROM events WHERE action_id != ''")
        assert s.query_scalar("SELECT uniqExact(action_id) FROM action_index") == want > 0
        users = "SELECT uniqExact(user_id) FROM {} WHERE {}"
        assert s.query_scalar(users.format("users_1m", "1")) == s.query_scalar(users.format(
            "events", "kind = 'business' AND operation IN ('page_view', 'reserve', 'payment_attempt', 'buy')")) > 0
        attempts = "SELECT groupArraySorted(100000)(event_id) FROM {} WHERE {}"
        assert s.query_scalar(attempts.format("payment_attempts", "1")) == s.query_scalar(attempts.format(
            "events", "kind = 'business' AND operation = 'payment_attempt'"))
        assert s.query_scalar("SELECT count() FROM payment_attempts") > 0
    finally:
        s.close()


def test_events_stored_before_the_minute_projection_get_it(tmp_path):
    import dataclasses
    import time

    from fleetlens.contract.decode import decode_payloads
    from fleetlens.simulate.runner import generate_payloads
    from fleetlens.store.client import EmbeddedStore
    from fleetlens.store.tables import EVENTS_TABLE, render_create, render_database

    # an events table as created before migration 4: no projection, no projection setting
    before = dataclasses.replace(EVENTS_TABLE, projections=(), settings=(("index_granularity", "8192"),))
    s = EmbeddedStore(tmp_path / "old", "fleetlens")
    try:
        s.command(render_database(s.render_context))
        for stmt in render_create(before, s.render_context):
            s.command(stmt)
        ensure_schema(s, MIGRATIONS[:3])
        s.insert_arrow("events", decode_payloads(generate_payloads(5000, seed=3)).events)
        assert "PROJECTION" not in s.query_scalar("SELECT create_table_query FROM system.tables WHERE name = 'events'")
        assert "min_compress_block_size" not in s.query_scalar("SELECT create_table_query FROM system.tables WHERE name = 'events'")
        assert ensure_schema(s) == [4, 5, 6, 7, 8, 9]
        ddl = s.query_scalar("SELECT create_table_query FROM system.tables WHERE name = 'events'")
        assert "PROJECTION events_1m" in ddl and "PROJECTION active_1m" in ddl and "PROJECTION active_15m" in ddl
        assert "min_compress_block_size = 8192" in ddl  # migration 9: parts written from now on use 8 KB blocks
        deadline = time.monotonic() + 60
        while s.query_scalar("SELECT count() FROM system.mutations WHERE table = 'events' AND NOT is_done") and time.monotonic() < deadline:
            time.sleep(0.2)
        # the parts stored before it have the projection now, and it answers as the rows do
        assert s.query_scalar("SELECT sum(rows) FROM system.projection_parts WHERE table = 'events' AND name = 'events_1m' AND active") > 0
        sql = ("SELECT toStartOfMinute(ts) AS m, kind, level, count() AS n FROM events GROUP BY m, kind, level "
               "ORDER BY m, kind, level SETTINGS optimize_use_projections = {}")
        plan = s.query_arrow("EXPLAIN " + sql.format(1)).column(0).to_pylist()
        assert any("ReadFromMergeTree (events_1m)" in line for line in plan)
        assert s.query_arrow(sql.format(1)).to_pylist() == s.query_arrow(sql.format(0)).to_pylist()
        users = ("SELECT toStartOfHour(toStartOfMinute(ts)) AS h, uniqExact(user_id) AS n FROM events "
                 "WHERE kind = 'business' AND notEmpty(user_id) GROUP BY h ORDER BY h SETTINGS optimize_use_projections = {}")
        plan = s.query_arrow("EXPLAIN " + users.format(1)).column(0).to_pylist()
        assert any("ReadFromMergeTree (active_1m)" in line for line in plan)
        assert s.query_arrow(users.format(1)).to_pylist() == s.query_arrow(users.format(0)).to_pylist()
    finally:
        s.close()


def test_users_hash_column_added_to_an_existing_rollup(tmp_path):
    import dataclasses

    from fleetlens.contract.decode import decode_payloads
    from fleetlens.simulate.runner import generate_payloads
    from fleetlens.store.client import EmbeddedStore
    from fleetlens.store.tables import USERS_1M_ROLLUP, USERS_1M_TABLE, render_rollup

    # users_1m and its view as created before migration 8: no user_hash
    old_table = dataclasses.replace(USERS_1M_TABLE, columns=USERS_1M_TABLE.columns[:3])
    old_select = USERS_1M_ROLLUP.select.replace(", reinterpretAsUInt128(sipHash128(user_id)) AS user_hash", "")
    old = dataclasses.replace(USERS_1M_ROLLUP, table=old_table, select=old_select)
    s = EmbeddedStore(tmp_path / "old", "fleetlens")
    try:
        ensure_schema(s, MIGRATIONS[:2])
        for stmt in render_rollup(old, s.render_context):  # what migration 3 ran then
            s.command(stmt)
        s.command("INSERT INTO schema_migrations (version, name) VALUES (3, 'users_1m')")
        ensure_schema(s, MIGRATIONS[:7])
        events = decode_payloads(generate_payloads(4000, seed=4)).events
        s.insert_arrow("events", events.slice(0, 2000))
        assert ensure_schema(s) == [8, 9]
        s.insert_arrow("events", events.slice(2000))  # through the old view: the column's DEFAULT fills it
        check = ("SELECT count() AS n, countIf(user_hash = reinterpretAsUInt128(sipHash128(user_id))) AS ok, "
                 "uniqExact(user_hash) = uniqExact(user_id) AS same FROM users_1m")
        row = s.query_arrow(check).to_pylist()[0]
        assert row["n"] == row["ok"] > 0 and row["same"]
    finally:
        s.close()
