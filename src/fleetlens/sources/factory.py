"""Building the configured transport from settings, so roles never branch on the MQ kind themselves."""

from __future__ import annotations

from fleetlens.settings import Settings
from fleetlens.sources.base import Sink, Source
from fleetlens.sources.redis import RedisStreamSink, RedisStreamSource, connect


def open_source(settings: Settings, group: str, consumer: str) -> Source:
    """A consumer of ``group`` on the configured MQ and streams."""
    if settings.mq == "redis":
        client = connect(settings.redis.url, socket_timeout=30, health_check_interval=10)
        return RedisStreamSource(client, settings.streams, group, consumer, settings.dlq_stream, settings.redis)
    if settings.mq == "kafka":
        from fleetlens.sources.kafka import KafkaSource

        return KafkaSource(settings.streams, group, consumer, settings.dlq_stream, settings.kafka)
    raise ValueError(f"unsupported mq {settings.mq!r}")


def open_sink(settings: Settings) -> Sink:
    """A producer on the configured MQ."""
    if settings.mq == "redis":
        return RedisStreamSink(connect(settings.redis.url, socket_timeout=30))
    if settings.mq == "kafka":
        from fleetlens.sources.kafka import KafkaSink, ensure_topics

        ensure_topics(settings.kafka, [*settings.streams, settings.dlq_stream])
        return KafkaSink(settings.kafka)
    raise ValueError(f"unsupported mq {settings.mq!r}")
