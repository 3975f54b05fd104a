"""The client: Arrow round-trips, bound parameters, timeouts, threads, one path per process."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from fleetlens.contract.schema import EVENTS_SCHEMA, METRICS_SCHEMA, REJECTS_SCHEMA
from fleetlens.store.client import EmbeddedStore, ServerStore, StoreError, open_store
from fleetlens.store.migrations import MIGRATIONS, ensure_schema
from fleetlens.settings import Settings
from tests.store.tables_data import LONG_MESSAGE, events_table, metrics_table, rejects_table

SLOW = "SELECT count() FROM numbers(100000000000) WHERE NOT ignore(sipHash64(number))"


@pytest.mark.parametrize(
    ("table", "schema", "data", "order"),
    [
        ("events", EVENTS_SCHEMA, events_table(6), "event_id"),
        ("metrics", METRICS_SCHEMA, metrics_table(), "event_id"),
        ("rejections", REJECTS_SCHEMA, rejects_table(), "line"),
    ],
)
def test_arrow_round_trip(store, table, schema, data, order):
    store.insert_arrow(table, data)
    cols = ", ".join(f"`{n}`" for n in schema.names)
    back = store.query_arrow(f"SELECT {cols} FROM {table} ORDER BY {order}")
    assert back.cast(schema).to_pylist() == data.sort_by(order).to_pylist()


def test_round_trip_details(store):
    store.insert_arrow("events", events_table(3))
    row = store.query_arrow("SELECT length(message) AS n, duration_ms, attrs FROM events WHERE event_id = 'ev-0'").to_pylist()[0]
    assert row == {"n": len(LONG_MESSAGE), "duration_ms": None, "attrs": [("truncated", "70000")]}
    assert store.query_scalar("SELECT user_id FROM events WHERE attrs['emoji'] = '🛒'") == "üser-字"


def test_text_index_finds_tokens_case_insensitively(store):
    store.insert_arrow("events", events_table(3))
    assert store.query_scalar("SELECT event_id FROM events WHERE hasToken(message, {t:String})", {"t": "get"}) == "ev-2"


def test_parameters_resist_injection(store):
    store.insert_arrow("events", events_table(3))
    for evil in ["x' OR '1'='1", "ev-0' --", "\\' OR 1=1 --", "ev-0'; DROP TABLE events; --"]:
        assert store.query_scalar("SELECT count() FROM events WHERE event_id = {e:String}", {"e": evil}) == 0
        assert store.query_scalar("SELECT count() FROM events WHERE has({ids:Array(String)}, event_id)", {"ids": [evil]}) == 0
    assert store.query_scalar("SELECT count() FROM events") == 3
    store.insert_arrow("rejections", rejects_table())
    assert store.query_scalar("SELECT reason FROM rejections WHERE event_id = {e:String}", {"e": "e'9"}).startswith("ts: 'yesterday'")


def test_query_timeout_is_applied(tmp_path: Path):
    with EmbeddedStore(tmp_path / "chdb", "fleetlens", query_timeout_s=0.5) as s:
        for run in (lambda: s.query_arrow(SLOW), lambda: s.command(f"CREATE TABLE t ENGINE = Memory AS {SLOW}")):
            started = time.monotonic()
            with pytest.raises(Exception, match="TIMEOUT_EXCEEDED|Timeout exceeded"):
                run()
            assert time.monotonic() - started < 5
        # A per-call bound, and the default restored afterwards on that connection.
        with pytest.raises(Exception, match="Timeout exceeded"):
            s.query_arrow(SLOW, timeout_s=0.2)
        assert s.query_scalar("SELECT getSetting('max_execution_time')") == 0.5


def test_insert_and_queries_from_several_threads(store):
    errors: list[BaseException] = []
    stop = threading.Event()
    selects = [0]

    def query() -> None:
        try:
            while not stop.is_set():
                store.query_scalar("SELECT count() FROM events WHERE kind = 'log'")
                selects[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    readers = [threading.Thread(target=query) for _ in range(2)]
    for r in readers:
        r.start()
    for i in range(20):
        store.insert_arrow("events", events_table(50, prefix=f"b{i}"))
    stop.set()
    for r in readers:
        r.join()
    assert not errors
    assert selects[0] > 0
    assert store.query_scalar("SELECT count() FROM events") == 1000


def test_one_path_per_process(store, tmp_path: Path):
    with pytest.raises(StoreError, match="already has the chDB store"):
        EmbeddedStore(tmp_path / "other", "fleetlens")
    with EmbeddedStore(store.path, "fleetlens") as same:  # same path: shared
        assert same.query_scalar("SELECT 1") == 1
    assert store.query_scalar("SELECT 1") == 1  # closing the second one left the first usable


def test_closed_store_refuses_queries(tmp_path: Path):
    s = EmbeddedStore(tmp_path / "chdb", "fleetlens")
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.query_arrow("SELECT 1")


def test_open_store_picks_backend_and_migrates(tmp_path: Path):
    with pytest.raises(StoreError, match="cluster"):
        open_store(Settings(data_dir=tmp_path, cluster="c"))
    with open_store(Settings(data_dir=tmp_path)) as s:
        assert isinstance(s, EmbeddedStore) and s.path == (tmp_path / "chdb").resolve()
        assert s.query_scalar("SELECT count() FROM schema_migrations") >= 1


def test_server_store_through_clickhouse_connect(tmp_path: Path):
    """ServerStore's code path (clickhouse-connect API) against its in-process chDB backend."""
    s = ServerStore(f"chdb://{tmp_path / 'cc'}", "fleetlens", query_timeout_s=0.5)
    try:
        assert s.render_context.text_index
        assert ensure_schema(s) == [m.version for m in MIGRATIONS] and ensure_schema(s) == []
        data = events_table(6)
        s.insert_arrow("events", data)
        back = s.query_arrow(f"SELECT {', '.join(EVENTS_SCHEMA.names)} FROM events ORDER BY event_id")
        assert back.cast(EVENTS_SCHEMA).to_pylist() == data.sort_by("event_id").to_pylist()
        assert s.query_scalar("SELECT count() FROM events WHERE event_id = {e:String}", {"e": "x' OR '1'='1"}) == 0
        with pytest.raises(Exception, match="Timeout exceeded"):
            s.query_arrow(SLOW)
    finally:
        s.close()
