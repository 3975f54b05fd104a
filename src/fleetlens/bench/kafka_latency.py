"""Kafka read latency: how long a message waits before a caught-up ``KafkaSource`` hands it out.

Sparse traffic is the case that matters: a producer sends one message every ``interval_s`` to a
topic a reader has caught up with, and each message's produce-to-read time is recorded (the
payload carries its send time). This is what an instant alert waits for on Kafka before any rule
runs. ``python -m fleetlens.bench.kafka_latency`` starts a broker and prints p50/p99/max in ms.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

from fleetlens.settings import KafkaSettings
from fleetlens.sources.kafka import KafkaSource, ensure_topics


def read_latency(bootstrap: str, topic: str, interval_s: float = 0.7, seconds: float = 40.0) -> dict[str, float]:
    """Produce one message every ``interval_s`` for ``seconds``; latency percentiles in ms and the count."""
    settings = KafkaSettings(bootstrap=bootstrap, session_timeout_ms=6000)
    ensure_topics(settings, [topic])
    source = KafkaSource([topic], f"{topic}.latency", "latency", f"{topic}.dlq", settings)
    latencies: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for delivery in source.read(1000, 0.1):
                now = time.time()
                latencies.extend(now - float(p) for p in delivery.payloads)
                with source.hold([delivery]) as held:
                    source.ack(held)

    thread = threading.Thread(target=reader, name="latency-reader")
    thread.start()
    try:
        deadline = time.monotonic() + 30  # the group's first assignment
        while not source.partitions() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        end = time.monotonic() + seconds
        sent = 0
        while time.monotonic() < end:
            producer.produce(topic, b"%.6f" % time.time(), key=str(sent))
            producer.poll(0)
            sent += 1
            time.sleep(interval_s)
        producer.flush(10)
        deadline = time.monotonic() + 10
        while len(latencies) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
        source.close()
    ordered = sorted(latencies)
    n = len(ordered)
    if n == 0:
        raise RuntimeError("no message was read")
    return {"messages": n, "sent": sent, "p50_ms": 1000 * ordered[n // 2],
            "p99_ms": 1000 * ordered[min(n - 1, int(n * 0.99))], "max_ms": 1000 * ordered[-1]}


def main() -> None:
    """Start a broker, measure, print."""
    from fleetlens.sources.kafka_broker import KafkaBroker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.7, help="seconds between messages")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long to produce")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, KafkaBroker(Path(tmp) / "kafka") as broker:
        r = read_latency(broker.bootstrap, "latency", args.interval, args.seconds)
    print(f"{r['messages']} of {r['sent']} messages, one every {args.interval} s: read latency p50 "
          f"{r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms")


if __name__ == "__main__":
    main()
