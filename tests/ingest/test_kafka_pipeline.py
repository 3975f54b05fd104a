"""simulate → Kafka (3 partitions) → ingest workers in one group → chDB, on a real broker.

Exact counts after: two workers sharing the partitions, a consumer added mid-stream (rebalance),
a worker process killed with SIGKILL again and again, and the broker down for 30 s.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from fleetlens.ingest.worker import IngestWorker
from fleetlens.settings import IngestSettings, KafkaSettings
from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.runner import run_simulation
from fleetlens.sources.kafka import KafkaSink, KafkaSource, committed_offsets, ensure_topics
from fleetlens.sources.kafka_broker import KafkaBroker
from fleetlens.store.client import EmbeddedStore

START_MS = 1_795_000_000_000
_names = itertools.count()


def kafka_settings(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap=bootstrap, session_timeout_ms=3000, partitions=3)


def new_topic(kafka: KafkaSettings) -> str:
    topic = f"fleet.events.{os.getpid()}.{next(_names)}"
    ensure_topics(kafka, [topic, topic + ".dlq"])
    return topic


def simulate(kafka: KafkaSettings, topic: str, count: int, seed: int, per_message: int = 20):
    config = SimulationConfig(seed=seed, start_ms=START_MS, count=count, events_per_message=per_message, users=200)
    return run_simulation(config, KafkaSink(kafka), stream=topic)


class Worker:
    """An ingest worker on its own thread with its own consumer of group ``ingest``."""

    def __init__(self, kafka: KafkaSettings, topic: str, store, name: str):
        self.source = KafkaSource([topic], "ingest", name, topic + ".dlq", kafka, revoke_wait_s=10)
        self.worker = IngestWorker(self.source, store, IngestSettings(batch_rows=3000, batch_seconds=0.2))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop,), name=name)
        self.thread.start()

    @property
    def stored(self) -> int:
        return self.worker.stats.stored

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)
        self.source.close()
        if self.worker.error:
            raise self.worker.error


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def stored_rows(store) -> tuple[int, int]:
    """(rows, distinct event ids) over events and metrics."""
    rows = sum(int(store.query_scalar(f"SELECT count() FROM {t}")) for t in ("events", "metrics"))
    distinct = sum(int(store.query_scalar(f"SELECT uniqExact(event_id) FROM {t}")) for t in ("events", "metrics"))
    return rows, distinct


def committed_total(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ingest"})
    try:
        offsets = committed_offsets(consumer, [TopicPartition(topic, p) for p in range(3)], 10)  # retries NOT_COORDINATOR
        return sum(max(0, tp.offset) for tp in offsets)
    finally:
        consumer.close()


def read_dlq(bootstrap: str, topic: str, expected: int) -> list[dict[str, str]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "dlq-check", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    letters: list[dict[str, str]] = []
    for _ in range(100):
        for m in consumer.consume(100, 0.1):
            if not m.error():
                letters.append({**{k: v.decode() for k, v in m.headers()}, "raw": m.value()})
        if len(letters) >= expected:
            break
    consumer.close()
    return letters


@pytest.mark.slow
def test_two_workers_store_every_event_exactly_once_and_poison_goes_to_the_dlq(kafka_broker, store):
    kafka = kafka_settings(kafka_broker.bootstrap)
    topic = new_topic(kafka)
    workers = [Worker(kafka, topic, store, f"w{i}") for i in range(2)]
    wait_for(lambda: all(w.source.leases._owned for w in workers), 60, "both consumers owning partitions")
    summary = simulate(kafka, topic, 60_000, seed=7)
    good = b'{"event_id":"ok-1","ts":1795000000000,"kind":"metric","service":"node","name":"cpu_percent","value":1}'
    poison = good + b'\n{"event_id":"bad-1","ts":1795000000000,"kind":"log","service":"web"}\n{not json'
    KafkaSink(kafka).send(topic, [poison], ["poison"])
    try:
        wait_for(lambda: sum(w.stored for w in workers) >= summary.events + 1, 90, "every event stored")
        wait_for(lambda: committed_total(kafka.bootstrap, topic) == summary.messages + 1, 30, "every offset committed")
    finally:
        for w in workers:
            w.close()

    assert all(w.stored > 0 for w in workers), "both consumers of the group must have had partitions"
    assert stored_rows(store) == (summary.events + 1, summary.events + 1)
    for operation, n in summary.by_operation.items():
        assert int(store.query_scalar(f"SELECT count() FROM events WHERE operation = '{operation}'")) == n
    letters = read_dlq(kafka.bootstrap, topic + ".dlq", 2)
    assert len(letters) == 2
    assert sorted(letter["field"] for letter in letters)[-1] == "payload"
    bad = next(letter for letter in letters if letter["event_id"] == "bad-1")
    assert bad["source"] == topic and bad["line"] == "1" and bad["reason"]
    assert int(store.query_scalar("SELECT count() FROM rejections")) == 2


@pytest.mark.slow
def test_a_consumer_added_mid_stream_loses_and_duplicates_nothing(kafka_broker, store):
    kafka = kafka_settings(kafka_broker.bootstrap)
    topic = new_topic(kafka)
    summary = simulate(kafka, topic, 150_000, seed=8, per_message=5)
    first = Worker(kafka, topic, store, "first")
    workers = [first]
    try:
        wait_for(lambda: first.stored > 0, 60, "the first worker storing")
        assert first.stored < summary.events / 2, "the rebalance must happen mid-stream"
        workers.append(Worker(kafka, topic, store, "added"))
        wait_for(lambda: stored_rows(store)[1] == summary.events, 120, "every event stored")
        wait_for(lambda: committed_total(kafka.bootstrap, topic) == summary.messages, 30, "every offset committed")
    finally:
        for w in workers:
            w.close()
    print(f"first stored {first.stored:,}, added stored {workers[1].stored:,}, "
          f"duplicates skipped {sum(w.worker.stats.duplicates_skipped for w in workers):,}")
    assert workers[1].stored > 0, "the added consumer must have taken partitions over"
    assert stored_rows(store) == (summary.events, summary.events)


def ingest_process(tmp_path, bootstrap: str, topic: str, *extra: str, batch_rows: int = 3000,
                   session_ms: int = 3000) -> subprocess.Popen:
    env = {
        **os.environ,
        "FLEETLENS_MQ": "kafka",
        "FLEETLENS_STREAMS": f'["{topic}"]',
        "FLEETLENS_DLQ_STREAM": topic + ".dlq",
        "FLEETLENS_DATA_DIR": str(tmp_path / "data"),
        "FLEETLENS_KAFKA__BOOTSTRAP": bootstrap,
        "FLEETLENS_KAFKA__SESSION_TIMEOUT_MS": str(session_ms),
        "FLEETLENS_INGEST__BATCH_ROWS": str(batch_rows),
        "FLEETLENS_INGEST__BATCH_SECONDS": "0.2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "fleetlens", "--log-level", "warning", "ingest", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(kafka_broker, tmp_path):
    kafka = kafka_settings(kafka_broker.bootstrap)
    topic = new_topic(kafka)
    summary = simulate(kafka, topic, 200_000, seed=11)
    kills = 0
    for round_ in range(3):
        before = committed_total(kafka.bootstrap, topic)
        # small batches: killed mid-stream; a 6 s session: the group waits that long for a killed member
        proc = ingest_process(tmp_path, kafka.bootstrap, topic, batch_rows=500, session_ms=6000)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and committed_total(kafka.bootstrap, topic) == before:
            time.sleep(0.05)
        time.sleep(0.03 * round_)
        if proc.poll() is not None:
            pytest.fail(f"ingest exited early: {proc.stdout.read().decode()[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = committed_total(kafka.bootstrap, topic)
        print(f"SIGKILL: {done} of {summary.messages} messages committed")
        if done >= summary.messages:
            break
        kills += 1
    assert kills >= 2, "the worker must have been killed mid-stream several times"

    # Idle for 1 s < the 6 s the group waits for the killed member's session to expire before it hands the
    # partitions over: --until-idle must not mistake that wait for having nothing left to do.
    final = ingest_process(tmp_path, kafka.bootstrap, topic, "--until-idle", "1")
    out, _ = final.communicate(timeout=180)
    assert final.returncode == 0, out.decode()[-3000:]
    assert committed_total(kafka.bootstrap, topic) == summary.messages
    store = EmbeddedStore(tmp_path / "data" / "chdb", "fleetlens")
    try:
        rows, distinct = stored_rows(store)
    finally:
        store.close()
    assert distinct == summary.events, "events lost"
    assert rows == summary.events, "events stored twice"


BROKER_DOWN_S = 30


@pytest.mark.slow
def test_broker_down_for_30_s_then_back_ingestion_resumes_by_itself(tmp_path, store):
    broker = KafkaBroker(tmp_path / "kafka").start()
    try:
        kafka = kafka_settings(broker.bootstrap)
        topic = new_topic(kafka)
        before = simulate(kafka, topic, 100_000, seed=12, per_message=5)
        worker = Worker(kafka, topic, store, "survivor")
        try:
            wait_for(lambda: worker.stored > 0, 60, "ingestion started")
            broker.kill()
            stored_at_kill = worker.stored
            time.sleep(BROKER_DOWN_S)
            broker.start()
            after = simulate(kafka, topic, 20_000, seed=13)
            total = before.events + after.events
            wait_for(lambda: stored_rows(store)[1] == total, 120, "ingestion resumed and caught up")
            wait_for(lambda: committed_total(broker.bootstrap, topic) == before.messages + after.messages, 60,
                     "every offset committed")
        finally:
            worker.close()
        print(f"stored {stored_at_kill:,} of {before.events:,} before the broker went down for {BROKER_DOWN_S}s; "
              f"retries {worker.worker.stats.retries}")
        assert stored_at_kill < before.events, "the broker must go down mid-stream"
        assert stored_rows(store) == (total, total)
    finally:
        broker.kill()
