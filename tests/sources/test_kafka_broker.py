"""The Kafka broker harness: a real broker from Maven Central, started, killed, restarted, stopped."""

from __future__ import annotations

import subprocess
import sys

from confluent_kafka import Consumer, Producer

from fleetlens.sources.kafka_broker import KafkaBroker


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0


def consume_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "check", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    out: list[bytes] = []
    for _ in range(100):
        out.extend(m.value() for m in consumer.consume(1000, 0.2) if not m.error())
        if len(out) >= expected:
            break
    consumer.close()
    return out


def test_killed_broker_restarts_on_the_same_port_with_its_data(tmp_path):
    broker = KafkaBroker(tmp_path / "kafka").start()
    try:
        produce(broker.bootstrap, "t", [b"a", b"b"])
        port, pid = broker.port, broker.pid
        broker.kill()
        assert broker.pid is None
        broker.start()
        assert broker.port == port and broker.pid != pid
        assert sorted(consume_all(broker.bootstrap, "t", 2)) == [b"a", b"b"]
    finally:
        broker.stop()
    assert broker.pid is None


def test_command_line_start_and_stop(tmp_path):
    run = [sys.executable, "-m", "fleetlens.sources.kafka_broker"]
    started = subprocess.run([*run, "start", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip().splitlines()[-1]
    try:
        produce(bootstrap, "cli", [b"x"])  # outlives the command that started it
    finally:
        stopped = subprocess.run([*run, "stop", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert delivery_error(bootstrap) is not None, "delivered to a stopped broker"


def delivery_error(bootstrap: str):
    """The delivery error of one message (None when delivered)."""
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 1500, "log_level": 0})
    producer.produce("cli", b"y", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(10)
    return errors[0] if errors else "no delivery report"
