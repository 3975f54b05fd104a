"""How far another consumer group is behind, asked from outside the group (it is not joined)."""

from __future__ import annotations

from fleetlens.settings import Settings
from fleetlens.sources.redis import connect


class GroupLagProbe:
    """Measures a group's lag (messages not yet acknowledged/committed) over the configured streams."""

    def __init__(self, settings: Settings, group: str):
        self.settings = settings
        self.group = group
        self._client = None
        self._consumer = None

    def lag(self) -> int | None:
        """Messages the group has not acknowledged yet; None when the group does not exist (yet)."""
        if self.settings.mq == "redis":
            return self._redis_lag()
        return self._kafka_lag()

    def _redis_lag(self) -> int | None:
        if self._client is None:
            self._client = connect(self.settings.redis.url, socket_timeout=10)
        total, found = 0, False
        for stream in self.settings.streams:
            if not self._client.exists(stream):
                continue
            for info in self._client.xinfo_groups(stream):
                name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
                if name == self.group:
                    found = True
                    total += int(info.get("lag") or 0) + int(info["pending"])
        return total if found else None

    def _kafka_lag(self) -> int | None:
        from confluent_kafka import Consumer, TopicPartition

        from fleetlens.sources.kafka import client_config, committed_offsets

        if self._consumer is None:
            self._consumer = Consumer({**client_config(self.settings.kafka), "group.id": self.group,
                                       "enable.auto.commit": False})
        metadata = self._consumer.list_topics(timeout=5)
        partitions = [TopicPartition(t, p) for t in self.settings.streams if t in metadata.topics
                      for p in metadata.topics[t].partitions]
        total, found = 0, False
        for tp in committed_offsets(self._consumer, partitions, 5):
            low, high = self._consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            if tp.offset >= 0:
                found = True
                total += max(0, high - tp.offset)
            else:
                total += max(0, high - low)
        return total if found else None

    def close(self) -> None:
        """Release the connection."""
        if self._client is not None:
            self._client.close()
        if self._consumer is not None:
            self._consumer.close()
