"""Versioned, idempotent schema migrations recorded in ``schema_migrations``.

A migration is a version, a name and a function rendering its statements for a
:class:`~fleetlens.store.tables.RenderContext`. Statements must themselves be idempotent
(``IF NOT EXISTS``, ``ADD COLUMN IF NOT EXISTS``): a process killed between running a migration
and recording it simply runs it again. Append new migrations; never edit an applied one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetlens.store.tables import (
    ALERTS_TABLE,
    DATA_TABLES,
    EVENTS_MINUTE_PROJECTION,
    EVENTS_TABLE,
    EVENTS_USERS_PROJECTION,
    EVENTS_USERS_QUARTER_PROJECTION,
    PAYMENT_ATTEMPTS_ROLLUP,
    SCHEMA_MIGRATIONS,
    USERS_1M_ROLLUP,
    USERS_1M_TABLE,
    RenderContext,
    render_create,
    render_database,
    render_action_index,
    render_add_column,
    render_add_projections,
    render_modify_settings,
    render_rollup,
    render_migrations_table,
)

if TYPE_CHECKING:
    from fleetlens.store.client import Store


@dataclass(frozen=True)
class Migration:
    """One schema step: ``statements(ctx)`` returns the DDL to run, in order."""

    version: int
    name: str
    statements: Callable[[RenderContext], list[str]]


def _initial(ctx: RenderContext) -> list[str]:
    return [stmt for table in DATA_TABLES for stmt in render_create(table, ctx)]


def _queries(ctx: RenderContext) -> list[str]:
    return [*render_action_index(ctx), *render_create(ALERTS_TABLE, ctx)]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, metrics and rejections tables", _initial),
    Migration(2, "action_index (min/max ts per action_id, materialized view) and alerts", _queries),
    Migration(3, "users_1m: active users per minute (materialized view) for simultaneous users",
              lambda ctx: render_rollup(USERS_1M_ROLLUP, ctx)),
    Migration(4, "events_1m: per-minute counts, amounts and durations as a projection of events (dashboard panels)",
              lambda ctx: render_add_projections(EVENTS_TABLE, ctx, names=(EVENTS_MINUTE_PROJECTION.name,))),
    Migration(5, "active_1m: distinct users per minute as a projection of events (active users per interval)",
              lambda ctx: render_add_projections(EVENTS_TABLE, ctx, names=(EVENTS_USERS_PROJECTION.name,))),
    Migration(6, "payment_attempts: every payment attempt (materialized view) for payment retries",
              lambda ctx: render_rollup(PAYMENT_ATTEMPTS_ROLLUP, ctx)),
    Migration(7, "active_15m: distinct users per quarter hour as a projection of events (active users per 15m, 1h, 3h, 1d)",
              lambda ctx: render_add_projections(EVENTS_TABLE, ctx, names=(EVENTS_USERS_QUARTER_PROJECTION.name,))),
    Migration(8, "users_1m.user_hash: the users' SipHash128 stored, counted instead of hashing user_id per query",
              lambda ctx: render_add_column(USERS_1M_TABLE, ctx, "user_hash")),
    Migration(9, "events: 8 KB compression blocks (parts written from now on), so a trace decompresses less",
              lambda ctx: render_modify_settings(EVENTS_TABLE, ctx, ("min_compress_block_size",))),
)


def applied_versions(store: Store) -> set[int]:
    """Versions recorded in ``schema_migrations`` (FINAL: a re-recorded version counts once)."""
    tbl = store.query_arrow(f"SELECT version FROM `{store.database}`.`{SCHEMA_MIGRATIONS}` FINAL")
    return {int(v) for v in tbl.column("version").to_pylist()} if tbl.num_rows else set()


def ensure_schema(store: Store, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Create the database and tables if missing, run pending migrations; return versions run.

    Safe to call on every start and from several processes: every statement is idempotent and
    ``schema_migrations`` is a ReplacingMergeTree keyed by version.
    """
    ctx = store.render_context
    store.command(render_database(ctx))
    store.command(render_migrations_table(ctx))
    done = applied_versions(store)
    ran = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        for stmt in migration.statements(ctx):
            store.command(stmt)
        store.command(
            f"INSERT INTO `{ctx.database}`.`{SCHEMA_MIGRATIONS}` (version, name) "
            "SELECT {version:UInt32}, {name:String}",
            {"version": migration.version, "name": migration.name},
        )
        ran.append(migration.version)
    return ran
