"""The detector on a real Kafka broker (3 partitions): alerts, and a restart that rebuilds state from the topic."""

from __future__ import annotations

import os

from fleetlens.detect.runner import Detector
from fleetlens.settings import Settings
from fleetlens.simulate.runner import encode_messages, message_keys
from fleetlens.sources.kafka import KafkaSink
from tests.detect.test_detector import START_MS, _alerts, _iso, _payloads, assert_each_alerted_once
from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema


def test_restart_on_kafka_replays_up_to_the_committed_offsets_and_alerts_once(kafka_broker, tmp_path):
    topic = f"fleet.events.detect.{os.getpid()}"
    settings = Settings(data_dir=tmp_path / "data", mq="kafka", streams=[topic], dlq_stream=topic + ".dlq",
                        kafka={"bootstrap": kafka_broker.bootstrap, "partitions": 3, "session_timeout_ms": 6000},
                        detect={"consumer": "d1", "batch_ms": 50, "alerts_stream": None})
    events, labels = _payloads(("provider_outage@200+120", "service_crash@150+5"), 420)
    split = next(i for i, e in enumerate(events) if e["ts"] >= _iso(START_MS + 260_000))  # mid-outage
    sink = KafkaSink(settings.kafka)
    store = EmbeddedStore(tmp_path / "chdb", "fleetlens")
    ensure_schema(store)
    try:
        from fleetlens.sources.kafka import ensure_topics

        ensure_topics(settings.kafka, [topic, topic + ".dlq"])
        first_part = events[:split]
        sink.send(topic, encode_messages(first_part, 50), message_keys(first_part, 50))
        first = Detector(settings, store)
        first.run(until_idle_s=5)
        assert first.stats.events == len(first_part)
        assert first.stats.late_events == 0  # a backlog over 3 partitions: none read ahead makes another's late
        second_part = events[split:]
        sink.send(topic, encode_messages(second_part, 50), message_keys(second_part, 50))
        second = Detector(settings, store)
        second.run(until_idle_s=5)
        assert second.stats.replayed_messages > 0  # the windows were rebuilt from the topic...
        assert second.stats.events > len(second_part)  # the re-read events, then the new ones
        assert second.stats.late_events == 0
        stored = _alerts(store)
    finally:
        sink.close()
        store.close()
    assert_each_alerted_once(stored, labels)  # ...and nothing was raised twice
