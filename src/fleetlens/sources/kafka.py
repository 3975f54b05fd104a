"""Kafka transport: a consumer in a consumer group, an idempotent producer, and the dead-letter topic.

``KafkaSource`` reads with ``confluent-kafka`` (librdkafka). Offsets are committed only for what
``ack`` was told, i.e. after the store holds the batch: the offset after the last acknowledged
message of each partition. ``ack`` runs in the ingest writer thread and only records the offsets;
the reader thread commits them (synchronously) at its next ``read``, inside a revoke callback, or
at ``close``. Committing from the writer thread would race the rebalance callbacks, which run in
the reader's poll: a synchronous commit there waits for a rebalance that waits for the callback.
Rebalances go through ``PartitionLeases`` (``sources/leases.py``): on revoke, batches being stored
are finished and committed first, queued work of the revoked partitions is dropped and never
committed by this consumer afterwards. Every commit carries the partition's *mark* (the offset after
the newest message the group ever handed out there) and a read is handed out only after a commit
announced a mark covering it; a newly assigned partition is read from the group's last commit with
deliveries below the mark flagged ``redelivered``, so ingest checks the store for events already
held exactly where a previous reader may have stored them. A crash between ``ack`` and the commit
means redelivery, which ingest turns into no duplicates. Memory: librdkafka's prefetch is bounded by
``kafka.queued_max_kbytes``, one read by ``kafka.read_bytes`` (whatever the message size), the
worker's batches by its own settings.

``KafkaSink`` is an idempotent producer (``acks=all``, no duplicates from its own retries), keyed
per the contract (``action_id``, else ``host``) so one operation stays in one partition, in order.
Batching: ``linger_ms`` and ``batch_bytes``; compression: ``compression`` (lz4 by default: cheap
on the CPU, ~3-5× on NDJSON).
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fleetlens.logsetup import get_logger
from fleetlens.settings import KafkaSettings
from fleetlens.sources.base import DeadLetter, Delivery, Lag
from fleetlens.sources.leases import PartitionLeases, mark_metadata, parse_mark

log = get_logger(__name__)

REVOKE_WAIT_S = 30.0  # how long a revoke waits for a batch of the partition that is being stored
_SKIP = object()


@dataclass
class KafkaDelivery(Delivery):
    """A delivery of one partition, stamped with the epoch of the partition's assignment it was read under."""

    epoch: int = 0


def client_config(settings: KafkaSettings) -> dict[str, object]:
    """Options every client shares: the bootstrap servers and the pass-through options (security...)."""
    return {"bootstrap.servers": settings.bootstrap, **settings.options}


def producer_config(settings: KafkaSettings, on_error) -> dict[str, object]:
    """An idempotent, batching, compressing producer reporting only failed deliveries to ``on_error``."""
    return {
        **client_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": settings.compression,
        "linger.ms": settings.linger_ms,
        "batch.size": settings.batch_bytes,
        "delivery.report.only.error": True,
        "on_delivery": on_error,
    }


def consumer_config(settings: KafkaSettings, group: str) -> dict[str, object]:
    """A consumer of ``group`` committing only by hand, with the prefetch bounded and kept flowing.

    librdkafka prefetches into a local queue of at most ``queued_max_kbytes``; once it is full a
    partition's next fetch waits ``fetch_queue_backoff_ms`` (librdkafka's default, 1 s, left a
    reader that empties the queue in milliseconds idle most of the time: measured, below 40 % of
    the broker's speed).
    """
    return {
        **client_config(settings),
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": settings.auto_offset_reset,
        "queued.max.messages.kbytes": settings.queued_max_kbytes,
        "fetch.queue.backoff.ms": settings.fetch_queue_backoff_ms,
    }


def ensure_topics(settings: KafkaSettings, topics: Sequence[str], timeout_s: float = 30.0) -> None:
    """Create the missing topics with ``settings.partitions`` partitions and wait until they are visible."""
    admin = AdminClient(client_config(settings))
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [t for t in dict.fromkeys(topics) if t not in existing]
    if not missing:
        return
    futures = admin.create_topics([NewTopic(t, settings.partitions, settings.replication_factor) for t in missing])
    for topic, future in futures.items():
        try:
            future.result(timeout_s)
            log.info("kafka topic created", topic=topic, partitions=settings.partitions)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    deadline = time.monotonic() + timeout_s
    while any(t not in admin.list_topics(timeout=timeout_s).topics for t in missing):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {missing} not visible after {timeout_s}s")
        time.sleep(0.1)


def committed_offsets(consumer: Consumer, tps: list[TopicPartition], timeout_s: float) -> list[TopicPartition]:
    """The group's committed offsets, retrying while the group coordinator moves or loads (retriable)."""
    # A fresh or just-failed-over coordinator answers NOT_COORDINATOR / LOAD_IN_PROGRESS for a while;
    # librdkafka does not always flag those retriable.
    moving = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE}
    deadline = time.monotonic() + 3 * timeout_s
    while True:
        try:
            return consumer.committed(tps, timeout=timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            if not (error.retriable() or error.code() in moving) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class _DeliveryErrors:
    """Collects failed delivery reports of a producer (only failures are reported)."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []

    def __call__(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self.errors.append(err)

    def raise_if_any(self, what: str) -> None:
        if self.errors:
            errors, self.errors = self.errors, []
            raise KafkaException(errors[0]) from RuntimeError(f"{len(errors)} {what} not delivered")


def _flush(producer: Producer, errors: _DeliveryErrors, what: str) -> None:
    """Wait until every produced message is acknowledged by the brokers (or has failed: raise)."""
    while producer.flush(1.0):
        pass
    errors.raise_if_any(what)


LAG_FRESH_S = 1.0  # a lag measurement this recent is answered again instead of asking the brokers
LAG_TIMEOUT_S = 2.0  # per broker call of a lag measurement


class KafkaSource:
    """One consumer of a consumer group over one or more topics (see the module docstring)."""

    def __init__(
        self,
        topics: Sequence[str],
        group: str,
        consumer: str,
        dlq_topic: str,
        settings: KafkaSettings,
        revoke_wait_s: float = REVOKE_WAIT_S,
    ):
        self.topics = list(topics)
        self.group = group
        self.dlq_topic = dlq_topic
        self.settings = settings
        self.revoke_wait_s = revoke_wait_s
        self.leases = PartitionLeases()
        self._warned: dict[int, float] = {}
        # The lag is measured with a client of its own: on the reader's connections a metadata or
        # offsets request queues behind the broker's long-polling fetch (fetch.wait.max.ms, 500 ms
        # each; measured: a lag took ~2 s and stalled the reader every 5 s once it had caught up).
        self._probe: Consumer | None = None
        self._lag_lock = threading.Lock()
        self._lag_cache: Lag | None = None
        self._lag_at = 0.0
        ensure_topics(settings, [*self.topics, dlq_topic])
        self._message_bytes = 0.0  # running mean payload size: how many messages fit ``read_bytes``
        self._consumer = Consumer(
            {
                **consumer_config(settings, group),
                "client.id": consumer,
                "session.timeout.ms": settings.session_timeout_ms,
                "heartbeat.interval.ms": max(100, settings.session_timeout_ms // 4),
            }
        )
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        self._dlq_errors = _DeliveryErrors()
        self._dlq: Producer | None = None

    # -- rebalance callbacks (run inside consume(), in the reader thread) -------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        self.leases.assign(keys)
        log.info("kafka partitions assigned", partitions=sorted(keys))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        self.leases.start_revoke(keys)
        self.leases.wait_released(keys, self.revoke_wait_s)
        try:
            self._commit(keys)
        except KafkaException as exc:  # the next owner re-reads what was not committed
            log.warning("commit before revoke failed", error=str(exc))
        self.leases.drop(keys)
        log.info("kafka partitions revoked", partitions=sorted(keys))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: another consumer may own them already, so nothing more is committed.
        keys = [(p.topic, p.partition) for p in partitions]
        self.leases.start_revoke(keys)
        self.leases.drop(keys)
        log.warning("kafka partitions lost (session expired?)", partitions=sorted(keys))

    def _commit(self, keys=None, reading=None) -> None:
        """Commit the offsets ``ack`` recorded (for ``keys``, or all) and announce ``reading``; reader thread only.

        ``reading``: {partition: (first, end)} of messages about to be handed out: the commit moves each
        partition's mark past them (see ``sources/leases.py``).
        """
        plan = self.leases.plan(keys, reading)
        if not plan.offsets:
            return
        try:
            result = self._consumer.commit(
                offsets=[
                    TopicPartition(t, p, offset, metadata=mark_metadata(mark))
                    for (t, p), (offset, mark) in plan.offsets.items()
                ],
                asynchronous=False,
            )
            failed = [tp for tp in result or [] if tp.error is not None]
            if failed:
                raise KafkaException(failed[0].error)
        except KafkaException:
            self.leases.failed(plan)
            raise
        self.leases.done(plan)

    def _inherit(self) -> None:
        """Fetch the committed offset and mark of partitions newly assigned (a broker call; retried next read)."""
        keys = self.leases.to_inherit()
        if not keys:
            return
        for tp in self._consumer.committed([TopicPartition(t, p) for t, p in keys], timeout=LAG_TIMEOUT_S):
            if tp.error is None:
                self.leases.inherit((tp.topic, tp.partition), tp.offset, parse_mark(tp.metadata))

    # -- reading ---------------------------------------------------------------------------------

    def read(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        """Up to ``max_messages`` messages (and ``kafka.read_bytes``) as one delivery per partition, in offset order.

        Commits what ``ack`` recorded since the last call together with the marks of what this read
        hands out. When that commit fails, nothing is handed out: the partitions are rewound to the
        first message of this read, and the commit is tried again next time.
        """
        messages = self._consume(min(max_messages, self.settings.read_count), timeout_s)
        by_partition: dict[tuple[str, int, int | None], object] = {}
        for message, epoch in messages:
            error = message.error()
            if error is not None:
                self._on_error(error)
                continue
            key = (message.topic(), message.partition())
            # one delivery per partition and assignment epoch: messages fetched before a rebalance that
            # happened in a later consume call of this read keep their old epoch, and hold() drops them
            delivery = by_partition.get((*key, epoch))
            if delivery is None:
                delivery = by_partition[(*key, epoch)] = _SKIP if epoch is None else KafkaDelivery(
                    key[0], key[1], [], [], epoch=epoch
                )
            if delivery is _SKIP:  # revoked during this consume call: the next owner reads it
                continue
            offset, value = message.offset(), message.value()
            delivery.positions.append(offset)  # type: ignore[union-attr]
            if value is None:
                value = b""
                delivery.malformed.append(  # type: ignore[union-attr]
                    DeadLetter(key[0], key[1], str(offset), 0, "", "payload", "Kafka message has no value", b"")
                )
            delivery.payloads.append(value)  # type: ignore[union-attr]
        deliveries: list[KafkaDelivery] = [d for d in by_partition.values() if d is not _SKIP]  # type: ignore[misc]
        # Only deliveries of the current epoch can be announced; older ones are dropped by hold() anyway.
        reading = {
            (d.stream, d.partition): (int(d.positions[0]), int(d.positions[-1]) + 1)
            for d in deliveries if self.leases.reading_epoch((d.stream, d.partition)) == d.epoch
        }
        for step in (self._inherit, lambda: self._commit(reading=reading)):
            try:
                step()
            except KafkaException as exc:
                self._on_error(exc.args[0])
        handed: list[Delivery] = []
        for d in deliveries:
            key = (d.stream, d.partition)
            if self.leases.reading_epoch(key) != d.epoch or key not in reading:
                continue  # revoked since it was read: the next owner reads it
            if not self.leases.announced(key, reading[key][1]):
                self._rewind(d)
                continue
            d.redelivered = self.leases.redelivered(key, int(d.positions[0]))
            handed.append(d)
        return handed

    def _rewind(self, delivery: KafkaDelivery) -> None:
        """Fetch this delivery's messages again later: their mark could not be announced."""
        try:
            self._consumer.seek(TopicPartition(delivery.stream, delivery.partition, int(delivery.positions[0])))
        except KafkaException as exc:
            if self.leases.reading_epoch((delivery.stream, delivery.partition)) == delivery.epoch:
                # still ours: these messages come again only once the partition is re-assigned
                log.warning("rewind failed", topic=delivery.stream, partition=delivery.partition, error=str(exc))
            # not assigned any more: the next owner reads them from the group's commit

    def _consume(self, count: int, timeout_s: float) -> list:
        """Up to ``count`` messages of at most about ``read_bytes`` payload bytes in all.

        ``consume`` only takes a message count, so the count per call comes from the running mean
        message size (the first call of a consumer asks for a few), and calls without waiting follow
        while the local prefetch queue has more and the budget is not spent. A read of 100-event
        messages thus holds ~100 of them, not ``read_count`` (10,000 would be the whole 436 MB backlog
        of the benchmark in one batch: no overlap of reading, decoding and storing, unbounded memory).
        """
        budget = self.settings.read_bytes
        messages: list = []
        size = 0
        wait = timeout_s
        while len(messages) < count and size < budget:
            ask = count - len(messages)
            if self._message_bytes:
                ask = min(ask, max(1, int((budget - size) / self._message_bytes)))
            else:
                ask = 1  # size unknown yet: one message, then the budget decides
            chunk = self._consumer.consume(ask, wait)
            if not chunk:
                break
            chunk_bytes = sum(len(m.value() or b"") for m in chunk)
            mean = chunk_bytes / len(chunk)
            self._message_bytes = mean if not self._message_bytes else 0.8 * self._message_bytes + 0.2 * mean
            # Stamp each message with its partition's assignment as of this call: a rebalance runs inside
            # the next consume call, after which these messages belong to an assignment that may be gone.
            epochs: dict[tuple[str, int], int | None] = {}
            for m in chunk:
                key = (m.topic(), m.partition())
                if key not in epochs:
                    epochs[key] = self.leases.reading_epoch(key)
                messages.append((m, epochs[key]))
            size += chunk_bytes
            wait = 0
        return messages

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        if error.code() == KafkaError._PARTITION_EOF:
            return
        now = time.monotonic()
        if now - self._warned.get(error.code(), 0.0) > 10:  # a broker outage reports the same error many times
            self._warned[error.code()] = now
            log.warning("kafka consumer error (retried by the client)", error=error.str())

    # -- holding, acknowledging, dead letters, lag ------------------------------------------------

    def hold(self, deliveries: Sequence[Delivery]) -> AbstractContextManager[list[Delivery]]:
        """Hold the deliveries of partitions this consumer still owns while they are stored and acknowledged."""
        return self.leases.hold(
            deliveries, lambda d: (d.stream, d.partition), lambda d: getattr(d, "epoch", -1)
        )

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Record, per partition, the offset after the last message of the deliveries, to be committed
        by the reader thread. Deliveries of a partition this consumer no longer owns (or owns under a
        newer assignment) are left out: their next owner re-reads them.
        """
        offsets: dict[tuple[tuple[str, int], int], int] = {}
        for d in deliveries:
            if d.positions:
                lease = ((d.stream, d.partition), getattr(d, "epoch", -1))
                offsets[lease] = max(offsets.get(lease, 0), int(d.positions[-1]) + 1)  # type: ignore[arg-type]
        self.leases.record(offsets)

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Produce each rejected line to the dead-letter topic: the raw bytes as value, source and reason as headers."""
        if not letters:
            return
        if self._dlq is None:
            self._dlq = Producer(producer_config(self.settings, self._dlq_errors))
        for letter in letters:
            headers = [
                ("source", letter.stream),
                ("partition", str(letter.partition)),
                ("offset", letter.position),
                ("line", str(letter.line)),
                ("event_id", letter.event_id),
                ("field", letter.field),
                ("reason", letter.reason),
            ]
            self._dlq.produce(self.dlq_topic, letter.raw, key=letter.event_id or None, headers=headers)
        _flush(self._dlq, self._dlq_errors, "dead letters")

    def partitions(self) -> list[str]:
        """The partitions assigned to this consumer now, as ``topic/partition``."""
        return [f"{t}/{p}" for t, p in self.leases.owned()]

    def lag(self) -> Lag:
        """Per ``topic/partition``: messages not yet read by the group and read but not yet committed.

        From the high watermarks and the group's committed offsets; ``pending`` is only known for
        partitions this consumer reads. Any thread may ask: a measurement at most ``LAG_FRESH_S``
        old is answered again. Raises ``KafkaException`` when the brokers cannot tell now.
        """
        with self._lag_lock:
            if self._lag_cache is None or time.monotonic() - self._lag_at > LAG_FRESH_S:
                self._lag_cache, self._lag_at = self._measure_lag(), time.monotonic()
            return self._lag_cache

    def _measure_lag(self) -> Lag:
        if self._probe is None:  # not in the group: never subscribes, only asks
            self._probe = Consumer({**client_config(self.settings), "group.id": self.group, "enable.auto.commit": False})
        probe, lag = self._probe, Lag()
        metadata = probe.list_topics(timeout=LAG_TIMEOUT_S)
        partitions = [
            TopicPartition(t, p) for t in self.topics if t in metadata.topics for p in sorted(metadata.topics[t].partitions)
        ]
        for tp in probe.committed(partitions, timeout=LAG_TIMEOUT_S):
            low, high = probe.get_watermark_offsets(tp, timeout=LAG_TIMEOUT_S, cached=False)
            start = tp.offset if tp.offset >= 0 else (low if self.settings.auto_offset_reset == "earliest" else high)
            key = (tp.topic, tp.partition)
            read = max(self.leases.handed_out(key), start) if self.leases.owns(key) else start
            lag.undelivered[f"{tp.topic}/{tp.partition}"] = max(0, high - read)
            lag.pending[f"{tp.topic}/{tp.partition}"] = read - start
        return lag

    def close(self) -> None:
        """Commit what was acknowledged, leave the group (its partitions go to the others), flush dead letters."""
        try:
            try:
                self._commit()
            except KafkaException as exc:
                log.warning("final commit failed; the next owner re-reads", error=str(exc))
            self._consumer.close()
        finally:
            if self._probe is not None:
                self._probe.close()
            if self._dlq is not None:
                self._dlq.flush(10)


class KafkaSink:
    """Producer: payloads to a topic, keyed per the contract; ``send`` returns once the brokers hold them."""

    wants_keys = True

    def __init__(self, settings: KafkaSettings):
        self._errors = _DeliveryErrors()
        self._producer = Producer(producer_config(settings, self._errors))

    def send(self, stream: str, payloads: Sequence[bytes], keys: Sequence[str] | None = None) -> None:
        """Produce every payload to topic ``stream`` (with ``keys[i]`` as the key), then wait for the acks."""
        produce, poll = self._producer.produce, self._producer.poll
        for i, payload in enumerate(payloads):
            key = keys[i] if keys is not None else None
            while True:
                try:
                    produce(stream, payload, key)
                    break
                except BufferError:  # the local queue is full: let librdkafka send some first
                    poll(0.05)
        _flush(self._producer, self._errors, "messages")

    def close(self) -> None:
        """Flush what is queued."""
        _flush(self._producer, self._errors, "messages")
