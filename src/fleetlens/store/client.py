"""One store interface, two back ends: embedded chDB, or a ClickHouse server via clickhouse-connect.

Every query is bounded by ``max_execution_time`` (``settings.query_timeout_s``) and takes bound
``{name:Type}`` parameters, never formatted user input. Inserts take Arrow tables. Once
:meth:`Store.insert_arrow` returns, the rows are in a committed part: they survive the process
being killed (not an OS crash; see ``docs/store.md``).
"""

from __future__ import annotations

import os
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from fleetlens.store.params import params_text
from fleetlens.store.tables import RenderContext

if TYPE_CHECKING:
    from fleetlens.settings import Settings

Params = Mapping[str, Any] | None

EXTERNAL = "__external__"  # how a query names the ``external`` table of Store.query_arrow
_ARROW_TO_CH = {pa.string(): "String", pa.large_string(): "String", pa.int64(): "Int64", pa.float64(): "Float64"}


# Batches arrive without repeated event_ids (ingest drops them first), so the in-block
# ReplacingMergeTree pass on insert is wasted work: skipping it took inserts of the events table
# from ~460k to ~680k rows/s (docs/benchmarks.md).
INSERT_SETTINGS: dict[str, Any] = {"optimize_on_insert": 0}

# In a cluster, inserts go through the Distributed table and return only once every shard holds
# its rows (foreground insert): by default the Distributed table would queue them on the receiving
# node's disk and send them later, and ingest would acknowledge the MQ for rows no shard has yet.
# Why not shard-aware inserts from the client: docs/deploy.md, "Inserts".
CLUSTER_INSERT_SETTINGS: dict[str, Any] = {"distributed_foreground_insert": 1}


class StoreError(RuntimeError):
    """The store cannot be used as asked (wrong path, closed, used after fork...)."""


class Store(ABC):
    """What the rest of fleetlens knows of the hot store. Thread-safe."""

    database: str
    render_context: RenderContext
    query_timeout_s: float

    @abstractmethod
    def command(self, sql: str, params: Params = None, *, timeout_s: float | None = None) -> None:
        """Run a statement returning nothing useful (DDL, INSERT … SELECT, OPTIMIZE)."""

    @abstractmethod
    def query_arrow(
        self, sql: str, params: Params = None, *, timeout_s: float | None = None, external: pa.Table | None = None
    ) -> pa.Table:
        """Run a query; the result as an Arrow table (zero columns when it has no rows).

        ``external``: a table the query reads as the relation ``__external__`` (e.g.
        ``WHERE id IN (SELECT id FROM __external__)``), passed as Arrow, not as SQL text.
        """

    @abstractmethod
    def insert_arrow(self, table: str, data: pa.Table, *, settings: Mapping[str, Any] | None = None) -> None:
        """Insert ``data`` into ``database.table``, columns matched by name; durable on return.

        ``settings`` are ClickHouse settings for this insert, over ``INSERT_SETTINGS``.
        """

    @abstractmethod
    def close(self) -> None:
        """Wait for in-flight queries, then release connections. Idempotent."""

    def query_scalar(self, sql: str, params: Params = None, *, timeout_s: float | None = None) -> Any:
        """First column of the first row, or None when there is no row."""
        tbl = self.query_arrow(sql, params, timeout_s=timeout_s)
        return tbl.column(0)[0].as_py() if tbl.num_rows else None

    def has_table_function(self, name: str) -> bool:
        """Whether the server knows the table function ``name`` (asked once per store: a newer query path can
        fall back on an older server)."""
        known: dict[str, bool] = self.__dict__.setdefault("_table_functions", {})
        if name not in known:
            known[name] = bool(self.query_scalar("SELECT count() FROM system.table_functions WHERE name = {name:String}",
                                                 {"name": name}))
        return known[name]

    def table(self, name: str) -> str:
        """``name`` qualified with the database, quoted: ```db`.`name```."""
        return f"`{self.database}`.`{name}`"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# chDB allows one data directory per process; every EmbeddedStore of the process must share it.
_registry_lock = threading.Lock()
_open_path: Path | None = None
_open_stores = 0


def _forked_child() -> None:
    global _open_path, _open_stores
    _open_path, _open_stores = None, 0
    EmbeddedStore._forked = True


os.register_at_fork(after_in_child=_forked_child)


class EmbeddedStore(Store):
    """chDB in this process, data under ``path``.

    One chDB connection runs one query at a time, so connections are pooled: each call borrows an
    idle one or opens another to the same path, and queries from several threads run in parallel
    (ingest inserting while the API queries). Only one path per process; a second store on the
    same path shares it, another path raises :class:`StoreError`.
    """

    _forked = False

    def __init__(self, path: Path | str, database: str, query_timeout_s: float = 60.0) -> None:
        global _open_path, _open_stores
        if EmbeddedStore._forked:
            raise StoreError("chDB cannot be used in a process forked after import; start it with 'spawn'")
        self.path = Path(path).resolve()
        self.database = database
        self.query_timeout_s = query_timeout_s
        self.render_context = RenderContext(database=database, cluster=None, text_index=True)
        with _registry_lock:
            if _open_path is not None and _open_path != self.path:
                raise StoreError(f"this process already has the chDB store {_open_path} open; cannot open {self.path}")
            self.path.mkdir(parents=True, exist_ok=True)
            _open_path = self.path
            _open_stores += 1
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._all: list[Any] = []
        self._state = threading.Condition()
        self._inflight = 0
        self._closed = False
        try:
            self._idle.put(self._connect())  # fail here, not on first use, if the path is locked
        except Exception:
            self._release_registry()
            raise

    def _connect(self) -> Any:
        import chdb

        conn = chdb.connect(str(self.path))
        # SET and USE last for the connection's session: every query on it is bounded, and
        # unqualified table names mean fleetlens' database.
        conn.query(f"SET max_execution_time = {float(self.query_timeout_s)}")
        conn.query(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
        conn.query(f"USE `{self.database}`")
        self._all.append(conn)
        return conn

    @contextmanager
    def _connection(self, timeout_s: float | None) -> Iterator[Any]:
        if EmbeddedStore._forked:
            raise StoreError("chDB cannot be used in a process forked after import; start it with 'spawn'")
        with self._state:
            if self._closed:
                raise StoreError("store is closed")
            self._inflight += 1
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                with self._state:
                    conn = self._connect()
            override = timeout_s is not None and timeout_s != self.query_timeout_s
            if override:
                conn.query(f"SET max_execution_time = {float(timeout_s)}")  # type: ignore[arg-type]
            try:
                yield conn
            finally:
                if override:
                    conn.query(f"SET max_execution_time = {float(self.query_timeout_s)}")
                self._idle.put(conn)
        finally:
            with self._state:
                self._inflight -= 1
                self._state.notify_all()

    def command(self, sql: str, params: Params = None, *, timeout_s: float | None = None) -> None:
        """Run a statement (see :meth:`Store.command`)."""
        with self._connection(timeout_s) as conn:
            conn.query(sql, "Null", params=params_text(params))

    def query_arrow(
        self, sql: str, params: Params = None, *, timeout_s: float | None = None, external: pa.Table | None = None
    ) -> pa.Table:
        """Run a query into Arrow (see :meth:`Store.query_arrow`)."""
        if external is not None:
            # Python(name) resolves `fleetlens_external` among the calling frames' locals: chDB
            # reads the Arrow buffers directly (50k ids: ~10-20 ms, against ~140 ms as a parameter).
            fleetlens_external = external  # noqa: F841
            sql = sql.replace(EXTERNAL, "Python(fleetlens_external)")
        with self._connection(timeout_s) as conn:
            return conn.query(sql, "ArrowTable", params=params_text(params))

    def insert_arrow(self, table: str, data: pa.Table, *, settings: Mapping[str, Any] | None = None) -> None:
        """``INSERT … SELECT … FROM Python(arrow)``: chDB reads the Arrow buffers in place."""
        if data.num_rows == 0:
            return
        cols = ", ".join(f"`{c}`" for c in data.column_names)
        merged = {**INSERT_SETTINGS, **(settings or {})}
        settings_sql = ", ".join(f"{k} = {int(v) if isinstance(v, bool) else v}" for k, v in merged.items())
        # Python(name) resolves `fleetlens_batch` among the calling frames' locals.
        fleetlens_batch = data  # noqa: F841
        with self._connection(None) as conn:
            conn.query(
                f"INSERT INTO {self.table(table)} ({cols}) SETTINGS {settings_sql} "
                f"SELECT {cols} FROM Python(fleetlens_batch)",
                "Null",
            )

    def close(self) -> None:
        """Wait for in-flight queries (chDB cannot interrupt them), then close every connection."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            self._state.wait_for(lambda: self._inflight == 0)
        for conn in self._all:
            try:
                conn.close()
            except Exception:  # a connection that failed mid-query must not keep the others open
                pass
        self._all.clear()
        self._release_registry()

    def _release_registry(self) -> None:
        global _open_path, _open_stores
        with _registry_lock:
            _open_stores -= 1
            if _open_stores <= 0:
                _open_path, _open_stores = None, 0


class ServerStore(Store):
    """A ClickHouse server or cluster through clickhouse-connect (HTTP).

    Sessions are off, which makes one client safe to share between threads; the HTTP pool runs
    their queries concurrently.
    """

    def __init__(self, url: str, database: str, query_timeout_s: float = 60.0, cluster: str | None = None) -> None:
        import clickhouse_connect

        self.database = database
        self.query_timeout_s = query_timeout_s
        # clickhouse-connect also speaks to an in-process chDB (``chdb:///path``, used by the tests
        # to run this class without a server); the HTTP-only options do not apply there.
        http = {} if url.startswith("chdb:") else {"autogenerate_session_id": False, "send_receive_timeout": int(query_timeout_s) + 30}
        self._client = clickhouse_connect.get_client(
            dsn=url, database="default", settings={"max_execution_time": query_timeout_s}, **http
        )
        on_cluster = f" ON CLUSTER '{cluster}'" if cluster else ""
        self._client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`{on_cluster}")
        self._client.database = database  # unqualified table names mean fleetlens' database
        self.render_context = RenderContext(database=database, cluster=cluster, text_index=self._has_text_index())
        self._insert_settings = {**INSERT_SETTINGS, **(CLUSTER_INSERT_SETTINGS if cluster else {})}

    def _has_text_index(self) -> bool:
        # The `text` index type is GA from 26.2; older servers get the tokenbf_v1 fallback.
        major, minor = (int(x) for x in str(self._client.server_version).split(".")[:2])
        return (major, minor) >= (26, 2)

    @staticmethod
    def _settings(timeout_s: float | None) -> dict[str, Any] | None:
        return {"max_execution_time": timeout_s} if timeout_s is not None else None

    def command(self, sql: str, params: Params = None, *, timeout_s: float | None = None) -> None:
        """Run a statement (see :meth:`Store.command`)."""
        self._client.command(sql, parameters=dict(params or {}), settings=self._settings(timeout_s))

    def query_arrow(
        self, sql: str, params: Params = None, *, timeout_s: float | None = None, external: pa.Table | None = None
    ) -> pa.Table:
        """Run a query into Arrow (see :meth:`Store.query_arrow`).

        ``external`` travels as one array parameter per column, unnested with ``arrayJoin``.
        """
        params = dict(params or {})
        if external is not None:
            cols = []
            for i, name in enumerate(external.column_names):
                ch_type = _ARROW_TO_CH.get(external.schema.field(name).type)
                if ch_type is None:
                    raise TypeError(f"external column {name}: {external.schema.field(name).type} is not supported")
                params[f"__ext{i}"] = external.column(name).to_pylist()
                cols.append(f"{{__ext{i}:Array({ch_type})}} AS `{name}`")
            names = ", ".join(f"`{n}`" for n in external.column_names)
            sql = sql.replace(EXTERNAL, f"(SELECT {names} FROM (SELECT {', '.join(cols)}) ARRAY JOIN {names})")
        return self._client.query_arrow(sql, parameters=params, settings=self._settings(timeout_s))

    def insert_arrow(self, table: str, data: pa.Table, *, settings: Mapping[str, Any] | None = None) -> None:
        """clickhouse-connect's Arrow insert (ArrowStream over HTTP)."""
        if data.num_rows:
            self._client.insert_arrow(
                table, data, database=self.database, settings={**self._insert_settings, **(settings or {})}
            )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """The store ``settings`` point at, schema ensured (``migrate=False`` skips that).

    ``clickhouse_url`` set: a :class:`ServerStore` (cluster DDL when ``cluster`` is set);
    otherwise the embedded :class:`EmbeddedStore` under ``settings.chdb_path``.
    """
    store: Store
    if settings.clickhouse_url:
        store = ServerStore(settings.clickhouse_url, settings.database, settings.query_timeout_s, settings.cluster)
    else:
        if settings.cluster:
            raise StoreError("cluster is set but clickhouse_url is not: the embedded store cannot be a cluster")
        store = EmbeddedStore(settings.chdb_path, settings.database, settings.query_timeout_s)
    if migrate:
        from fleetlens.store.migrations import ensure_schema

        try:
            ensure_schema(store)
        except Exception:
            store.close()
            raise
    return store
