"""The store's table families, each defined once and rendered for embedded or cluster mode.

A :class:`TableDef` names the columns, sorting key, partitioning, skip indexes and (for cluster
mode) the sharding key of one family. :func:`render_create` turns it into DDL:

* embedded / single server: one ``ReplacingMergeTree`` table ``{database}.{name}``;
* cluster (``RenderContext.cluster`` set): ``{name}_local`` as ``ReplicatedReplacingMergeTree``
  created ``ON CLUSTER`` on every node, plus a ``Distributed`` table named ``{name}`` over it, so
  queries and inserts use the same table name in both modes.

Every statement is ``IF NOT EXISTS``: rendering and running it again changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

# Column types and codecs shared by the families. Timestamps are millisecond UTC (the contract's
# ts); Delta before ZSTD pays off on the mostly-increasing ts within a sorted part.
TS = "DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))"
LC = "LowCardinality(String)"
STR = "String CODEC(ZSTD(1))"
ATTRS = "Map(LowCardinality(String), String) CODEC(ZSTD(1))"


@dataclass(frozen=True)
class RenderContext:
    """Where and how DDL is rendered.

    ``cluster``: ClickHouse cluster name, or None for embedded chDB / a single server.
    ``text_index``: True for the full-text ``text`` index on messages (ClickHouse >= 26.2, and chDB
    4.4), False for the ``tokenbf_v1`` bloom-filter fallback on older servers.
    """

    database: str
    cluster: str | None = None
    text_index: bool = True


@dataclass(frozen=True)
class Projection:
    """An aggregate projection kept in every part of a table: ``select`` (``SELECT … GROUP BY …``) and, when set,
    ``index_granularity``: rows per granule of the projection's own data. A projection of large per-minute
    states (digests, user sets) wants small granules, or a query for one hour of a part holding six reads
    (and deserializes) all six."""

    name: str
    select: str
    index_granularity: int | None = None

    def ddl(self) -> str:
        """``name (SELECT …) [WITH SETTINGS (…)]`` as ``PROJECTION`` / ``ADD PROJECTION`` take it."""
        settings = f" WITH SETTINGS (index_granularity = {self.index_granularity})" if self.index_granularity else ""
        return f"{self.name} ({self.select}){settings}"


@dataclass(frozen=True)
class TableDef:
    """One table family: columns, keys, indexes; engine-independent."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, type with codec)
    order_by: tuple[str, ...]
    partition_by: str
    shard_key: str  # Distributed sharding expression in cluster mode
    indexes: tuple[str, ...] = ()  # "name expr TYPE t GRANULARITY g", may use {message_index}
    projections: tuple[Projection, ...] = ()  # kept in every part
    version_column: str | None = None  # ReplacingMergeTree version (latest row wins)
    engine: str = "ReplacingMergeTree"  # or AggregatingMergeTree; Replicated* in a cluster
    settings: tuple[tuple[str, str], ...] = field(default=(("index_granularity", "8192"),))

    @property
    def column_names(self) -> list[str]:
        """Column names in table order."""
        return [c for c, _ in self.columns]


# The contract's envelope, shared by events and metrics: which event, when, and where it came from.
_IDENTITY = (("event_id", "String CODEC(ZSTD(1))"), ("ts", TS))
_ORIGIN = (("service", LC), ("app", LC), ("host", LC), ("pod", LC), ("container", LC), ("node", LC))

# Per-minute aggregates of events, kept inside every part of the events table (an aggregate projection):
# the counts, amounts and duration statistics the dashboard plots. ClickHouse answers a query from it
# when the query's filters, groups and aggregates are expressible on it (time as toStartOfMinute(ts),
# whole minutes) and reads the rows otherwise, so answers are the same either way (t-digest quantiles:
# merged per-minute digests, within the documented error). Being part of the parts, it moves with a
# partition (archiving), is rebuilt on merges that collapse redelivered rows, and exists on every shard.
# Which queries use it, and how ranges are split into whole minutes: query/common.py (split_range).
DURATION_QUANTILES = (0.5, 0.9, 0.95, 0.99)
EVENTS_MINUTE_PROJECTION = Projection(
    "events_1m",
    "SELECT toStartOfMinute(ts), kind, service, level, event_type, operation, outcome, count(), sum(amount), "
    "count(duration_ms), min(duration_ms), max(duration_ms), avg(duration_ms), "
    f"quantilesTDigest({', '.join(map(str, DURATION_QUANTILES))})(duration_ms) "
    "GROUP BY toStartOfMinute(ts), kind, service, level, event_type, operation, outcome",
)

# Distinct users per minute and kind (a uniqExact state: the users' 128-bit hashes, exactly as uniqExact
# keeps them), kept like events_1m: "active users per interval" merges the whole minutes' states instead
# of hashing every business event's user_id (~470k states' entries instead of ~1M strings per 6 hours of
# the simulator's mix). notEmpty(user_id) is a key so that a query can leave events without a user out.
# An aggregate projection answers only aggregates it holds as written: uniqExactIf(…) would not match.
# A state holds up to every user (~32 KB for 2,000): 128-row granules (about 40 minutes), so an hour's query
# reads about two hours of states, not a merged part's whole day (1 h: 35 → 11 ms on 5M events). ClickHouse
# takes a projection only when it reads fewer marks than the rows; 16-row granules were as fast but lost that
# comparison below ~1,000 business events a minute (where the rows are cheap anyway).
EVENTS_USERS_PROJECTION = Projection(
    "active_1m",
    "SELECT toStartOfMinute(ts), kind, notEmpty(user_id), uniqExact(user_id) "
    "GROUP BY toStartOfMinute(ts), kind, notEmpty(user_id)",
    index_granularity=128,
)
# The same per quarter hour, for intervals of whole quarter hours (15m, 1h, 3h, 1d): a 15-minute bucket merges
# one set instead of fifteen (6 h in 15-minute buckets: 45 → 9 ms on 5M events).
EVENTS_USERS_QUARTER_PROJECTION = Projection(
    "active_15m",
    "SELECT toStartOfFifteenMinutes(ts), kind, notEmpty(user_id), uniqExact(user_id) "
    "GROUP BY toStartOfFifteenMinutes(ts), kind, notEmpty(user_id)",
    index_granularity=128,
)

# Logs and business events share one table so a trace by action_id reads one table. ORDER BY
# serves "events of kind K of service S over an interval"; event_id last makes the sorting key
# unique per event, which ReplacingMergeTree needs to collapse redelivered copies.
EVENTS_TABLE = TableDef(
    name="events",
    columns=(
        *_IDENTITY,
        ("kind", LC),
        *_ORIGIN,
        ("level", LC),
        ("event_type", LC),
        ("message", "String CODEC(ZSTD(3))"),
        ("action_id", STR),
        ("logger", LC),
        ("source_file", LC),
        ("line", "Nullable(Int64)"),
        ("duration_ms", "Nullable(Float64) CODEC(ZSTD(1))"),
        ("user_id", STR),
        ("session_id", STR),
        ("operation", LC),
        ("page", LC),
        ("order_id", STR),
        ("amount", "Nullable(Float64)"),
        ("currency", LC),
        ("provider", LC),
        ("attempt", "Nullable(Int64)"),
        ("outcome", LC),
        ("error_code", LC),
        ("attrs", ATTRS),
    ),
    order_by=("kind", "service", "ts", "event_id"),
    partition_by="toDate(ts)",
    # One trace on one shard; logs without an action_id spread by event_id instead of piling
    # onto the shard of ''. Deterministic per event, so a redelivered copy meets its original.
    shard_key="cityHash64(if(action_id = '', event_id, action_id))",
    indexes=(
        "idx_action_id action_id TYPE bloom_filter(0.01) GRANULARITY 1",
        "idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1",
        "idx_level level TYPE set(8) GRANULARITY 1",
        "idx_message message TYPE {message_index}",
    ),
    projections=(EVENTS_MINUTE_PROJECTION, EVENTS_USERS_PROJECTION, EVENTS_USERS_QUARTER_PROJECTION),
    # a ReplacingMergeTree takes projections only when told what merges do with them: rebuild from the
    # merged (deduplicated) rows. 8 KB compression blocks instead of 64 KB: a trace reads ~20 rows spread over
    # a few granules, and decompressing each small column's 64 KB block around them was most of its cost
    # (idle, the events query's p50 13.4 -> 10.9 ms; scans, inserts and size unchanged; under ingest the gain is
    # inside the noise: docs/benchmarks.md, "Queries").
    settings=(("index_granularity", "8192"), ("deduplicate_merge_projection_mode", "'rebuild'"),
              ("min_compress_block_size", "8192")),
)

# "CPU/RAM per host per interval": metric name first, then host, then time.
METRICS_TABLE = TableDef(
    name="metrics",
    columns=(
        *_IDENTITY,
        *_ORIGIN,
        ("name", LC),
        ("value", "Float64 CODEC(Gorilla, ZSTD(1))"),
        ("unit", LC),
        ("attrs", ATTRS),
    ),
    order_by=("name", "host", "ts", "event_id"),
    partition_by="toDate(ts)",
    shard_key="cityHash64(host)",
)

# One row per rejected line. (stream, partition, position, line) identifies a rejection, so a
# redelivered bad payload collapses onto its first rejection (the latest received_at is kept).
REJECTIONS_TABLE = TableDef(
    name="rejections",
    columns=(
        ("received_at", TS),
        ("stream", LC),
        ("partition", "Int32"),
        ("position", "String"),
        ("line", "Int32"),
        ("event_id", "String"),
        ("field", LC),
        ("reason", STR),
        ("raw", "String CODEC(ZSTD(3))"),
    ),
    order_by=("stream", "partition", "position", "line"),
    partition_by="toDate(received_at)",
    shard_key="cityHash64(stream, partition, position)",
    version_column="received_at",
)

# Applied migrations. Not a family of data: one small table, replicated to every node in cluster
# mode (see render_migrations_table).
SCHEMA_MIGRATIONS_TABLE = TableDef(
    name="schema_migrations",
    columns=(
        ("version", "UInt32"),
        ("name", "String"),
        ("applied_at", "DateTime64(3, 'UTC') DEFAULT now64(3)"),
    ),
    order_by=("version",),
    partition_by="tuple()",
    shard_key="version",
    settings=(),
)

DATA_TABLES: tuple[TableDef, ...] = (EVENTS_TABLE, METRICS_TABLE, REJECTIONS_TABLE)

# First and last event time of every action_id, kept by a materialized view on events: a trace
# lookup reads this small table first and then scans events only within [ts_min, ts_max]. min/max
# are idempotent, so a backfill run twice or overlapping the view changes nothing.
ACTION_INDEX_TABLE = TableDef(
    name="action_index",
    columns=(
        ("action_id", "String"),
        ("ts_min", "SimpleAggregateFunction(min, DateTime64(3, 'UTC'))"),
        ("ts_max", "SimpleAggregateFunction(max, DateTime64(3, 'UTC'))"),
    ),
    order_by=("action_id",),
    partition_by="tuple()",
    shard_key="cityHash64(action_id)",  # the events' key for rows with an action_id: same shard
    engine="AggregatingMergeTree",
)
ACTION_INDEX_SELECT = "SELECT action_id, min(ts) AS ts_min, max(ts) AS ts_max FROM {source} WHERE action_id != '' GROUP BY action_id"

@dataclass(frozen=True)
class Rollup:
    """A table derived from events: kept by a materialized view (``{name}_mv``) on every insert into events and
    backfilled from the events stored before it. ``select`` (``… FROM {source} …``) is what the view runs; its
    columns are the table's, in table order, so the rollup of any events relation (events ∪ archive:
    archive/reader.py) is the same SELECT over that relation. Its day partitions go with the events' day when
    it is archived (archive/families.py)."""

    table: TableDef
    select: str

    @property
    def name(self) -> str:
        """Table name (the Distributed one in a cluster)."""
        return self.table.name


# Which users were active in which minute, for "simultaneous users": one row per (minute, class,
# user) instead of one per event (~20x fewer rows). `minute` is the event time rounded *up* to the
# minute, so the contract's window (t - W, t] is exactly the minutes t - W + 1m .. t. Replacing by
# the whole key: a repeated row (backfill, redelivery) collapses, and the query counts distinct users.
# `user_hash` is the user's SipHash128, the very key uniqExact(user_id) hashes a string to: counting distinct
# user_hash is counting distinct user_id, without hashing each string again at query time (6 h: 3x faster).
# Its DEFAULT fills it for a view created before the column (migration 8).
USER_HASH = "reinterpretAsUInt128(sipHash128(user_id))"
USERS_1M_TABLE = TableDef(
    name="users_1m",
    columns=(("minute", "DateTime('UTC')"), ("class", LC), ("user_id", "String"), ("user_hash", f"UInt128 DEFAULT {USER_HASH}")),
    order_by=("minute", "class", "user_id"),
    partition_by="toDate(minute)",
    shard_key="cityHash64(user_id)",
)
USERS_1M_SELECT = (
    "SELECT toDateTime(intDiv(toUnixTimestamp64Milli(ts) + 59999, 60000) * 60, 'UTC') AS minute, "
    f"if(operation = 'page_view', 'viewing', 'buying') AS class, user_id, {USER_HASH} AS user_hash FROM {{source}} "
    "WHERE kind = 'business' AND user_id != '' AND operation IN ('page_view', 'reserve', 'payment_attempt', 'buy') "
    "GROUP BY minute, class, user_id"
)
USERS_1M_ROLLUP = Rollup(USERS_1M_TABLE, USERS_1M_SELECT)

# Every payment attempt (~2 % of the events), for "payment retries": the retries query reads these instead
# of scanning every business event of its range, and finds the purchases with more than one attempt row by
# `action_hash` (cityHash64(action_id), a UInt64 grouped much faster than the id strings) before grouping
# only those purchases' attempts by action_id (query/business.py). Replacing by (ts, event_id): a
# redelivered or backfilled copy collapses; until then the query counts attempts as distinct event ids.
PAYMENT_ATTEMPTS_TABLE = TableDef(
    name="payment_attempts",
    columns=(
        ("ts", TS),
        ("event_id", STR),
        ("action_id", STR),
        ("action_hash", "UInt64"),
        ("provider", LC),
        ("outcome", LC),
        ("attempt", "Nullable(Int64)"),
    ),
    order_by=("ts", "event_id"),
    partition_by="toDate(ts)",
    shard_key="cityHash64(action_id)",  # the events' key for rows with an action_id: a purchase on one shard
)
PAYMENT_ATTEMPTS_ROLLUP = Rollup(
    PAYMENT_ATTEMPTS_TABLE,
    "SELECT ts, event_id, action_id, cityHash64(action_id) AS action_hash, provider, outcome, attempt FROM {source} "
    "WHERE kind = 'business' AND operation = 'payment_attempt'",
)

# Alerts raised by the detector. Ids are deterministic (rule, key, window), so a replayed alert
# or a status change replaces the row of its id (latest updated_at wins).
ALERTS_TABLE = TableDef(
    name="alerts",
    columns=(
        ("id", "String"),
        ("rule", LC),
        ("key", "String"),
        ("severity", LC),
        ("ts_start", "DateTime64(3, 'UTC')"),
        ("ts_end", "DateTime64(3, 'UTC')"),
        ("status", LC),  # firing | resolved
        ("evidence", "String CODEC(ZSTD(3))"),  # JSON: counts, thresholds, sample event ids
        ("updated_at", "DateTime64(3, 'UTC') DEFAULT now64(3)"),
    ),
    order_by=("id",),
    partition_by="toYYYYMM(ts_start)",
    shard_key="cityHash64(id)",
    version_column="updated_at",
)

# The names the rest of fleetlens inserts into and queries (same in embedded and cluster mode).
EVENTS = EVENTS_TABLE.name
METRICS = METRICS_TABLE.name
REJECTIONS = REJECTIONS_TABLE.name
SCHEMA_MIGRATIONS = SCHEMA_MIGRATIONS_TABLE.name
ACTION_INDEX = ACTION_INDEX_TABLE.name
ALERTS = ALERTS_TABLE.name
USERS_1M = USERS_1M_TABLE.name
PAYMENT_ATTEMPTS = PAYMENT_ATTEMPTS_TABLE.name

MESSAGE_TEXT_INDEX = "text(tokenizer = splitByNonAlpha, preprocessor = lower(message)) GRANULARITY 100000000"
MESSAGE_TOKENBF_INDEX = "tokenbf_v1(32768, 3, 0) GRANULARITY 1"


def _on_cluster(ctx: RenderContext) -> str:
    return f" ON CLUSTER '{ctx.cluster}'" if ctx.cluster else ""


def _engine(table: TableDef, ctx: RenderContext, zk_path: str, replica: str) -> str:
    version = table.version_column or ""
    if not ctx.cluster:
        return f"{table.engine}({version})"
    args = f"'{zk_path}', '{replica}'" + (f", {version}" if version else "")
    return f"Replicated{table.engine}({args})"


def _create_storage_table(
    table: TableDef,
    ctx: RenderContext,
    name: str,
    zk_path: str = "/clickhouse/tables/{shard}/{database}/{table}",
    replica: str = "{replica}",
) -> str:
    message_index = MESSAGE_TEXT_INDEX if ctx.text_index else MESSAGE_TOKENBF_INDEX
    body = [f"    `{col}` {typ}" for col, typ in table.columns]
    body += [f"    INDEX {ix.format(message_index=message_index)}" for ix in table.indexes]
    body += [f"    PROJECTION {projection.ddl()}" for projection in table.projections]
    parts = [
        f"CREATE TABLE IF NOT EXISTS `{ctx.database}`.`{name}`{_on_cluster(ctx)}\n(\n" + ",\n".join(body) + "\n)",
        f"ENGINE = {_engine(table, ctx, zk_path, replica)}",
    ]
    if table.partition_by != "tuple()":
        parts.append(f"PARTITION BY {table.partition_by}")
    parts.append(f"ORDER BY ({', '.join(table.order_by)})")
    if table.settings:
        parts.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in table.settings))
    return "\n".join(parts)


def local_name(table: TableDef, ctx: RenderContext) -> str:
    """Name of the table that stores the rows: ``{name}_local`` in cluster mode, else ``{name}``."""
    return f"{table.name}_local" if ctx.cluster else table.name


def render_create(table: TableDef, ctx: RenderContext) -> list[str]:
    """DDL creating ``table`` in ``ctx``: one statement embedded; local + Distributed in a cluster."""
    statements = [_create_storage_table(table, ctx, local_name(table, ctx))]
    if ctx.cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS `{ctx.database}`.`{table.name}`{_on_cluster(ctx)}"
            f" AS `{ctx.database}`.`{local_name(table, ctx)}`\n"
            f"ENGINE = Distributed('{ctx.cluster}', '{ctx.database}', '{local_name(table, ctx)}', {table.shard_key})"
        )
    return statements


# Table settings a table needs for its projections, set on an existing table before they are added.
PROJECTION_SETTINGS = ("deduplicate_merge_projection_mode",)


def render_add_projections(table: TableDef, ctx: RenderContext, materialize: bool = True,
                           names: tuple[str, ...] | None = None) -> list[str]:
    """Statements giving an existing ``table`` (created before its projections were defined) its table settings
    and projections (``names`` only, when given), and (``materialize``) building them for the parts it already
    holds (a background mutation; until it ends, queries read those parts' rows instead). Idempotent."""
    projections = [p for p in table.projections if names is None or p.name in names]
    if not projections:
        return []
    target = f"`{ctx.database}`.`{local_name(table, ctx)}`{_on_cluster(ctx)}"
    settings = tuple(k for k, _ in table.settings if k in PROJECTION_SETTINGS)
    out = render_modify_settings(table, ctx, settings) if settings else []
    for projection in projections:
        out.append(f"ALTER TABLE {target} ADD PROJECTION IF NOT EXISTS {projection.ddl()}")
        if materialize:
            out.append(f"ALTER TABLE {target} MATERIALIZE PROJECTION {projection.name}")
    return out


def render_database(ctx: RenderContext) -> str:
    """``CREATE DATABASE IF NOT EXISTS`` for ``ctx.database``."""
    return f"CREATE DATABASE IF NOT EXISTS `{ctx.database}`{_on_cluster(ctx)}"


def render_migrations_table(ctx: RenderContext) -> str:
    """DDL of ``schema_migrations``.

    In a cluster every node holds a replica of one shared table (no ``{shard}`` in the Keeper path,
    replica named ``{shard}-{replica}``), so any node knows which migrations ran.
    """
    return _create_storage_table(
        SCHEMA_MIGRATIONS_TABLE,
        ctx,
        SCHEMA_MIGRATIONS_TABLE.name,
        zk_path="/clickhouse/tables/all/{database}/{table}",
        replica="{shard}-{replica}",
    )


def render_action_index(ctx: RenderContext) -> list[str]:
    """``action_index``, the materialized view filling it from events, and a backfill of stored events.

    In a cluster the view reads each node's ``events_local`` into its ``action_index_local``: a
    trace's rows live on one shard (same sharding key), so the Distributed table sees its min/max.
    """
    db = f"`{ctx.database}`"
    target, source = local_name(ACTION_INDEX_TABLE, ctx), local_name(EVENTS_TABLE, ctx)
    return [
        *render_create(ACTION_INDEX_TABLE, ctx),
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.`action_index_mv`{_on_cluster(ctx)} TO {db}.`{target}`\nAS "
        + ACTION_INDEX_SELECT.format(source=f"{db}.`{source}`"),
        f"INSERT INTO {db}.`{ACTION_INDEX}` " + ACTION_INDEX_SELECT.format(source=f"{db}.`{EVENTS}`"),
    ]


def render_rollup(rollup: Rollup, ctx: RenderContext) -> list[str]:
    """A rollup's table, its materialized view on events, and a backfill of stored events (idempotent: the
    rollups are replacing tables, so a repeated row collapses and their queries are insensitive to copies).

    In a cluster the view reads each node's ``events_local`` into the rollup's ``_local`` table; the backfill
    goes through the Distributed tables."""
    db = f"`{ctx.database}`"
    target, source = local_name(rollup.table, ctx), local_name(EVENTS_TABLE, ctx)
    return [
        *render_create(rollup.table, ctx),
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.`{rollup.name}_mv`{_on_cluster(ctx)} TO {db}.`{target}`\nAS "
        + rollup.select.format(source=f"{db}.`{source}`"),
        f"INSERT INTO {db}.`{rollup.name}` ({', '.join(rollup.table.column_names)}) "
        + rollup.select.format(source=f"{db}.`{EVENTS}`"),
    ]


def render_add_column(table: TableDef, ctx: RenderContext, column: str) -> list[str]:
    """Statements giving an existing ``table`` its ``column`` as defined (on the storage table and, in a cluster,
    the Distributed one) and computing it for the parts it already holds (a background mutation; until it
    ends, its DEFAULT is computed when those parts are read). Idempotent."""
    definition = dict(table.columns)[column]
    names = [local_name(table, ctx)] + ([table.name] if ctx.cluster else [])
    out = [f"ALTER TABLE `{ctx.database}`.`{name}`{_on_cluster(ctx)} ADD COLUMN IF NOT EXISTS `{column}` {definition}"
           for name in names]
    out.append(f"ALTER TABLE `{ctx.database}`.`{local_name(table, ctx)}`{_on_cluster(ctx)} MATERIALIZE COLUMN `{column}`")
    return out


def render_modify_settings(table: TableDef, ctx: RenderContext, names: tuple[str, ...]) -> list[str]:
    """``ALTER TABLE … MODIFY SETTING`` giving an existing ``table`` the values its definition has for ``names``
    (parts written from then on, by inserts and merges, follow them). Idempotent."""
    values = dict(table.settings)
    assignments = ", ".join(f"{name} = {values[name]}" for name in names)
    return [f"ALTER TABLE `{ctx.database}`.`{local_name(table, ctx)}`{_on_cluster(ctx)} MODIFY SETTING {assignments}"]


# --- archiving (fleetlens.archive): partition moves and drops, and the column structure of the Parquet files

_PARTITION_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def archive_staging(table: TableDef) -> TableDef:
    """The archiver's twin of ``table`` (``{name}_archiving``): the same structure, keys and indexes, so a
    partition can ``MOVE`` into it atomically before it is dropped (see docs/archive.md)."""
    return replace(table, name=f"{table.name}_archiving")


def _partition_id(partition_id: str) -> str:
    if not _PARTITION_ID.match(partition_id):
        raise ValueError(f"not a partition id: {partition_id!r}")
    return partition_id


def render_drop_partition(table: TableDef, ctx: RenderContext, partition_id: str) -> str:
    """``ALTER TABLE … DROP PARTITION ID`` on the table holding the rows (every shard in a cluster)."""
    return (f"ALTER TABLE `{ctx.database}`.`{local_name(table, ctx)}`{_on_cluster(ctx)} "
            f"DROP PARTITION ID '{_partition_id(partition_id)}'")


def render_move_partition(table: TableDef, dest: TableDef, ctx: RenderContext, partition_id: str) -> str:
    """``ALTER TABLE … MOVE PARTITION ID … TO TABLE`` between two tables of one structure: atomic per node."""
    return (f"ALTER TABLE `{ctx.database}`.`{local_name(table, ctx)}`{_on_cluster(ctx)} "
            f"MOVE PARTITION ID '{_partition_id(partition_id)}' TO TABLE `{ctx.database}`.`{local_name(dest, ctx)}`")


def column_structure(table: TableDef) -> str:
    """``name Type, …`` without codecs or defaults: the structure a table function reads a file with."""
    cols = []
    for name, typ in table.columns:
        typ = re.split(r" (?:CODEC|DEFAULT)\b", typ)[0]
        cols.append(f"`{name}` {typ}")
    return ", ".join(cols)
