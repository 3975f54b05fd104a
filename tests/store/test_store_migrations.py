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
    assert {n for n, _ in before} == {"events", "metrics", "rejections", "schema_migrations"}
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
