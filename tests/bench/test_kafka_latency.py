"""Sparse Kafka traffic is handed out promptly: the lag is never measured on the reader's own consumer.

The stall this guards against (docs/benchmarks.md, "Kafka read latency with sparse traffic"): on the
reader's connections a metadata or offsets request queues behind the broker's long-polling fetches,
so measuring the lag there held reads up ~2 s every 5 s (p99 1,333 ms). Timings are the benchmark's
job (``python -m fleetlens.bench.kafka_latency``); this test checks what causes them, without a clock.
"""

from __future__ import annotations

import pytest

import fleetlens.sources.kafka as kafka_module
from fleetlens.bench.kafka_latency import read_latency
from fleetlens.settings import KafkaSettings
from fleetlens.sources.kafka import KafkaSink, KafkaSource, ensure_topics

# What a lag measurement asks; "committed" is not here: the reader asks it once per new assignment
# (the offsets and marks its partitions come with), checked by count below.
LAG_REQUESTS = {"list_topics", "get_watermark_offsets", "position", "offsets_for_times"}


class _Recording:
    """Forwards to a confluent-kafka Consumer and records the names of the methods called."""

    def __init__(self, consumer):
        self._consumer, self.calls = consumer, []

    def __getattr__(self, name):
        attr = getattr(self._consumer, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


@pytest.mark.slow
def test_the_lag_is_measured_beside_the_reader_not_on_its_consumer(kafka_broker, monkeypatch):
    monkeypatch.setattr(kafka_module, "LAG_FRESH_S", 0.0)  # every lag() asks the brokers
    settings = KafkaSettings(bootstrap=kafka_broker.bootstrap, session_timeout_ms=6000)
    topic = "latency.lag-probe"
    ensure_topics(settings, [topic])
    KafkaSink(settings).send(topic, [b"m%d" % i for i in range(30)], ["k"] * 30)  # one partition
    source = KafkaSource([topic], "lag-probe", "c1", f"{topic}.dlq", settings)
    recording = _Recording(source._consumer)
    source._consumer = recording
    try:
        lags, read = [], []
        for _ in range(100):
            deliveries = source.read(10, 0.2)
            read += deliveries
            lags.append(source.lag())
            with source.hold(deliveries) as held:
                source.ack(held)
            if sum(len(d) for d in read) >= 30:
                break
        source.read(10, 0.2)  # commits the last acknowledgements
        after = source.lag()
    finally:
        source.close()
    assert sum(len(d) for d in read) == 30
    assert all(lag.known for lag in lags) and after.total == 0, (lags, after)
    assert any(lag.undelivered.get(f"{topic}/{p}", 0) > 0 for lag in lags for p in range(3)), lags
    assert not LAG_REQUESTS & set(recording.calls), recording.calls
    assert recording.calls.count("committed") <= 2, recording.calls
    assert recording.calls.count("consume") >= 2


@pytest.mark.slow
def test_the_latency_benchmark_runs_on_the_sessions_broker(kafka_broker):
    result = read_latency(kafka_broker.bootstrap, "latency.test", interval_s=0.5, seconds=6)
    assert result["messages"] == result["sent"] >= 10
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"], result
