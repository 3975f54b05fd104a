"""Re-reading the recent past of a stream for a consumer group, without moving the group.

The detector keeps its state in memory; on start it re-reads what its group already consumed in
the last window-length (by MQ write time) and rebuilds its windows from it. ``open_replay``
returns a ``Replay``: ``deliveries()`` yields that stretch, and ``uncovered(delivery)`` removes
from a later group delivery the entries the replay already covered (Redis hands a restarted
consumer its pending entries again; Kafka restarts at the committed offset, so nothing overlaps).
"""

from __future__ import annotations

import time
from typing import Iterator

from fleetlens.settings import Settings
from fleetlens.sources.base import Delivery
from fleetlens.sources.redis import DATA_FIELD, _id_key, connect

CHUNK = 5_000


class Replay:
    """A stretch of already-consumed messages to re-read (nothing, for a new group)."""

    def deliveries(self) -> Iterator[Delivery]:
        """The messages, oldest first, in chunks."""
        return iter(())

    def uncovered(self, delivery: Delivery) -> tuple[Delivery, list]:
        """``delivery`` without the entries the replay covered, and the positions it removed (to acknowledge)."""
        return delivery, []

    def partitions(self) -> list[str]:
        """``stream/partition`` names the replay reads."""
        return []


class RedisReplay(Replay):
    """XRANGE from ``last-delivered-id - horizon`` to the group's last-delivered-id, per stream."""

    def __init__(self, settings: Settings, group: str, horizon_ms: int):
        self.client = connect(settings.redis.url, socket_timeout=30)
        self.ends: dict[str, tuple[int, int]] = {}
        self.ranges: list[tuple[str, str, str]] = []
        for stream in settings.streams:
            if not self.client.exists(stream):
                continue
            for info in self.client.xinfo_groups(stream):
                name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
                last = info["last-delivered-id"]
                last = last.decode() if isinstance(last, bytes) else last
                if name == group and last != "0-0":
                    self.ends[stream] = _id_key(last)
                    start = max(0, _id_key(last)[0] - horizon_ms)
                    self.ranges.append((stream, f"{start}-0", last))

    def partitions(self) -> list[str]:
        return [f"{stream}/0" for stream, _start, _end in self.ranges]

    def deliveries(self) -> Iterator[Delivery]:
        for stream, start, end in self.ranges:
            cursor = start
            while True:
                entries = self.client.xrange(stream, min=cursor, max=end, count=CHUNK)
                if not entries:
                    break
                payloads = [fields.get(DATA_FIELD, b"") for _, fields in entries]
                yield Delivery(stream, 0, [e[0] for e in entries], payloads, redelivered=True)
                if len(entries) < CHUNK:
                    break
                cursor = "(" + entries[-1][0].decode()
        self.client.close()

    def uncovered(self, delivery: Delivery) -> tuple[Delivery, list]:
        end = self.ends.get(delivery.stream)
        if end is None or not delivery.redelivered:
            return delivery, []
        keep = [i for i, p in enumerate(delivery.positions) if _id_key(_text(p)) > end]
        if len(keep) == len(delivery.positions):
            return delivery, []
        covered = [p for i, p in enumerate(delivery.positions) if _id_key(_text(p)) <= end]
        kept = Delivery(delivery.stream, delivery.partition, [delivery.positions[i] for i in keep],
                        [delivery.payloads[i] for i in keep], redelivered=True)
        return kept, covered


class KafkaReplay(Replay):
    """Per partition: from the offset at ``committed time - horizon`` up to the group's committed offset."""

    def __init__(self, settings: Settings, group: str, horizon_ms: int):
        from confluent_kafka import Consumer, TopicPartition

        from fleetlens.sources.kafka import client_config, committed_offsets

        self.settings = settings
        self._tp = TopicPartition
        self.consumer = Consumer({**client_config(settings.kafka), "group.id": group, "enable.auto.commit": False,
                                  "enable.partition.eof": True})
        metadata = self.consumer.list_topics(timeout=10)
        partitions = [TopicPartition(t, p) for t in settings.streams if t in metadata.topics
                      for p in metadata.topics[t].partitions]
        committed = committed_offsets(self.consumer, partitions, 10) if partitions else []
        self.ends = {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
        since = int(time.time() * 1000) - horizon_ms
        starts = self.consumer.offsets_for_times([TopicPartition(t, p, since) for (t, p) in self.ends], timeout=10) if self.ends else []
        self.starts = {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else self.ends[(tp.topic, tp.partition)])
                       for tp in starts}

    def partitions(self) -> list[str]:
        return [f"{t}/{p}" for (t, p), s in self.starts.items() if s < self.ends[(t, p)]]

    def deliveries(self) -> Iterator[Delivery]:
        todo = {k: (s, self.ends[k]) for k, s in self.starts.items() if s < self.ends[k]}
        if not todo:
            self.consumer.close()
            return
        self.consumer.assign([self._tp(t, p, s) for (t, p), (s, _e) in todo.items()])
        idle_since = time.monotonic()
        while todo and time.monotonic() - idle_since < 30:
            messages = self.consumer.consume(CHUNK, 1.0)
            by_partition: dict[tuple[str, int], Delivery] = {}
            for m in messages:
                if m.error() is not None:
                    continue
                key = (m.topic(), m.partition())
                if key not in todo or m.offset() >= todo[key][1]:
                    continue
                d = by_partition.setdefault(key, Delivery(key[0], key[1], [], [], redelivered=True))
                d.positions.append(m.offset())
                d.payloads.append(m.value() or b"")
                if m.offset() + 1 >= todo[key][1]:
                    del todo[key]
            if by_partition:
                idle_since = time.monotonic()
                yield from by_partition.values()
        self.consumer.close()


def open_replay(settings: Settings, group: str, horizon_ms: int) -> Replay:
    """The replay of ``group``'s last ``horizon_ms`` of consumed messages on the configured MQ."""
    if horizon_ms <= 0:
        return Replay()
    if settings.mq == "redis":
        return RedisReplay(settings, group, horizon_ms)
    return KafkaReplay(settings, group, horizon_ms)


def _text(position) -> str:
    return position.decode() if isinstance(position, bytes) else str(position)
