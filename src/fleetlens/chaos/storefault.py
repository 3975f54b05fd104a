"""A real store failure that can be switched on and off: ClickHouse refusing inserts with TOO_MANY_PARTS.

``parts_to_throw_insert`` is the MergeTree setting behind ClickHouse's best-known production
failure ("Too many parts ... Merges are processing significantly slower than inserts"). Setting
it to 1 on a table that holds a part makes the server itself refuse every insert with that error
(code 252) while reads keep working, exactly as when merges fall behind; resetting it ends the
outage. Nothing in fleetlens is wrapped or mocked: the worker sees the error chDB (or a ClickHouse
server) raises. The statement must run where the store is open (the embedded store belongs to
one process), so the store-outage scenario runs its ingest worker in the harness's process.
"""

from __future__ import annotations

from fleetlens.store.client import Store

TABLES = ("events", "metrics")


def fail_inserts(store: Store, tables: tuple[str, ...] = TABLES) -> None:
    """From now on every insert into ``tables`` fails with TOO_MANY_PARTS (each must hold a part)."""
    for table in tables:
        store.command(f"ALTER TABLE {store.table(table)} MODIFY SETTING parts_to_throw_insert = 1")


def heal(store: Store, tables: tuple[str, ...] = TABLES) -> None:
    """Inserts work again."""
    for table in tables:
        store.command(f"ALTER TABLE {store.table(table)} RESET SETTING parts_to_throw_insert")
