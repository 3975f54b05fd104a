"""The consumer-group interface every MQ transport implements.

A transport hands out ``Delivery`` objects (many MQ messages at once, columnar: no object per
message) and is told which deliveries are durably handled with ``ack``. Nothing is acknowledged
before that, so a crash means redelivery, never loss (at-least-once); the ingest worker turns
redelivery into exactly-once storage by ``event_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ContextManager, Protocol, Sequence


@dataclass
class Delivery:
    """Messages of one stream (or one Kafka partition) handed out by one read call.

    ``positions[i]`` is the entry id (Redis, as the bytes the server sent) or offset (Kafka) of
    ``payloads[i]``; ``position_text`` gives it as text.
    ``redelivered`` is true when these messages may have been handed out before (a consumer's own
    pending entries after a restart, entries claimed from a dead consumer, Kafka re-reads after a
    rebalance): ingest then checks the store for events it already holds.
    """

    stream: str
    partition: int
    positions: list[str | bytes | int]
    payloads: list[bytes]
    redelivered: bool = False
    # Entries that carry no payload at all (e.g. a stream entry without the ``data`` field): their
    # payload is b"" and they go to the dead-letter stream as they are.
    malformed: list["DeadLetter"] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.payloads)

    def position_text(self, index: int) -> str:
        """The position of message ``index`` as text (for dead letters and logs)."""
        position = self.positions[index]
        return position.decode() if isinstance(position, bytes) else str(position)


@dataclass(frozen=True)
class DeadLetter:
    """A rejected line on its way to the dead-letter stream."""

    stream: str
    partition: int
    position: str
    line: int
    event_id: str
    field: str
    reason: str
    raw: bytes


@dataclass
class Lag:
    """How far a consumer group is behind, per stream (or ``stream/partition``)."""

    undelivered: dict[str, int] = field(default_factory=dict)  # not yet handed to any consumer
    pending: dict[str, int] = field(default_factory=dict)  # handed out, not yet acknowledged
    known: bool = True  # False when it could not be measured right now

    @property
    def total(self) -> int:
        """Entries not yet acknowledged, over all streams."""
        return sum(self.undelivered.values()) + sum(self.pending.values())


def nothing_left(source: "Source") -> bool:
    """False while ``source`` knows of messages not yet handed to its group (an ``--until-idle`` run waits).

    A Kafka consumer that just restarted sees nothing for a while (the group rebalances only once its
    dead predecessor's session expires) although the whole backlog is there: idle is not done.
    Messages handed out but not acknowledged do not count (a worker's own in-flight batches finish as
    it stops). While the lag cannot be measured (the MQ is down, the group coordinator is moving) the
    answer is False: the run waits until it can tell.
    """
    try:
        lag = source.lag()
    except Exception:  # noqa: BLE001 - any transport error means "cannot tell yet"
        return False
    return lag.known and all(n <= 0 for n in lag.undelivered.values())


class Source(Protocol):
    """A consumer in a consumer group of some MQ."""

    def read(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        """Up to ``max_messages`` messages, waiting at most ``timeout_s`` for the first one."""
        ...

    def hold(self, deliveries: Sequence[Delivery]) -> ContextManager[list[Delivery]]:
        """Hold the deliveries while they are stored and acknowledged; yields those this consumer may still handle.

        A transport that moves work between consumers (Kafka rebalances) leaves out deliveries
        whose partition was taken away, and does not take it away while it is held.
        """
        ...

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Mark the deliveries handled: they are durably stored (or dead-lettered)."""
        ...

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Write rejected lines to the dead-letter stream; returns once they are durable there."""
        ...

    def lag(self) -> Lag:
        """The group's lag now."""
        ...

    def partitions(self) -> list[str]:
        """``stream/partition`` names this consumer reads now (Redis: ``stream/0``; Kafka: its assignment)."""
        ...

    def close(self) -> None:
        """Release connections; unacknowledged messages stay pending for redelivery."""
        ...


class Sink(Protocol):
    """A producer writing payloads (one event or an NDJSON batch each) to an MQ."""

    def send(self, stream: str, payloads: Sequence[bytes], keys: Sequence[str] | None = None) -> None:
        """Write the payloads, in order; returns once the MQ holds them."""
        ...

    def close(self) -> None:
        """Flush and release connections."""
        ...
