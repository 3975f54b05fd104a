"""simulate → Redis Streams → ingest → chDB, in one process, with exact counts."""

from __future__ import annotations

import threading
import time

from fleetlens.ingest.stats import IngestStats
from fleetlens.ingest.worker import IngestWorker
from fleetlens.settings import IngestSettings, RedisSettings
from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.runner import run_simulation
from fleetlens.sources.redis import RedisStreamSink, RedisStreamSource

STREAM = "fleet.events"
DLQ = "fleet.events.dlq"
START_MS = 1_795_000_000_000


def make_source(client, consumer="w1") -> RedisStreamSource:
    return RedisStreamSource(client, [STREAM], "ingest", consumer, DLQ, RedisSettings(block_ms=50))


def run_worker(source, store, **ingest) -> IngestStats:
    settings = IngestSettings(**{"batch_rows": 5000, "batch_seconds": 0.2, **ingest})
    worker = IngestWorker(source, store, settings)
    worker.run(threading.Event(), until_idle_s=1.0)
    return worker.stats


def count(store, sql: str) -> int:
    return int(store.query_scalar(sql))


def test_simulated_events_are_stored_exactly_and_poison_goes_to_the_dlq(redis_client, store):
    config = SimulationConfig(seed=7, start_ms=START_MS, count=30_000, events_per_message=50, users=200)
    summary = run_simulation(config, RedisStreamSink(redis_client), stream=STREAM)
    sink = RedisStreamSink(redis_client)
    good = b'{"event_id":"ok-1","ts":1795000000000,"kind":"metric","service":"node","name":"cpu_percent","value":1}'
    sink.send(STREAM, [good + b'\n{"event_id":"bad-1","ts":1795000000000,"kind":"log","service":"web"}\n' + b"{not json"])
    redis_client.xadd(STREAM, {"payload": "no data field"})

    stats = run_worker(make_source(redis_client), store)

    expected_events = summary.by_kind.get("log", 0) + summary.by_kind.get("business", 0)
    expected_metrics = summary.by_kind.get("metric", 0) + 1
    assert count(store, "SELECT count() FROM events") == expected_events
    assert count(store, "SELECT uniqExact(event_id) FROM events") == expected_events
    assert count(store, "SELECT count() FROM metrics") == expected_metrics
    for operation, n in summary.by_operation.items():
        assert count(store, f"SELECT count() FROM events WHERE operation = '{operation}'") == n
    assert stats.rejected == 3
    assert count(store, "SELECT count() FROM rejections") == 3
    letters = {f[b"reason"].decode(): f for _, f in redis_client.xrange(DLQ)}
    assert len(letters) == 3
    by_field = sorted(f[b"field"].decode() for f in letters.values())
    assert by_field.count("payload") == 2
    assert set(by_field) - {"payload"} <= {"level", "event_type", "message"}
    raws = {f[b"data"] for f in letters.values()}
    assert b"{not json" in raws and b"payload=no data field" in raws
    lag = make_source(redis_client).lag()
    assert lag.total == 0


def test_redelivered_batches_are_not_stored_twice(redis_client, store):
    config = SimulationConfig(seed=3, start_ms=START_MS, count=8_000, events_per_message=100, users=100)
    summary = run_simulation(config, RedisStreamSink(redis_client), stream=STREAM)

    class CrashBeforeAck(RedisStreamSource):
        """Stores but never acknowledges: what a worker killed right after its insert leaves behind."""

        def ack(self, deliveries):
            pass

    first = run_worker(CrashBeforeAck(redis_client, [STREAM], "ingest", "w1", DLQ, RedisSettings(block_ms=50)), store)
    assert first.stored == summary.events
    again = run_worker(make_source(redis_client, consumer="w1"), store)
    assert again.stored == 0
    assert again.duplicates_skipped == summary.events
    assert count(store, "SELECT count() FROM events") + count(store, "SELECT count() FROM metrics") == summary.events
    assert make_source(redis_client).lag().total == 0


def test_a_rate_cap_spreads_a_backlog_over_time_and_still_stores_all_of_it(redis_client, store):
    config = SimulationConfig(seed=5, start_ms=START_MS, count=30_000, events_per_message=100, users=100)
    summary = run_simulation(config, RedisStreamSink(redis_client), stream=STREAM)
    source = make_source(redis_client)
    settings = IngestSettings(batch_rows=5000, batch_seconds=0.2, max_events_per_s=15_000)
    worker = IngestWorker(source, store, settings)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        time.sleep(1.0)
        read_after_1s = summary.messages - sum(source.lag().undelivered.values())  # handed out so far
        thread_alive = thread.is_alive()
        deadline = time.monotonic() + 20
        while source.lag().total or worker.stats.stored < summary.events:
            assert time.monotonic() < deadline, "the capped worker did not drain the backlog"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
    assert thread_alive
    # 15k events/s = 150 messages/s of 100 events: about 150 messages in the first second, not the whole 300
    assert 60 <= read_after_1s <= 220, read_after_1s
    assert worker.stats.stored == summary.events
    assert count(store, "SELECT count() FROM events") + count(store, "SELECT count() FROM metrics") == summary.events
