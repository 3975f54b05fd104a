"""Which partitions a consumer owns right now, and which of its handed-out work it may still commit.

A Kafka consumer group moves partitions between consumers (rebalance). Each assignment of a
partition to this consumer gets a fresh *epoch*; a delivery carries the epoch it was read under.
The ingest writer *holds* a batch's deliveries while it stores and acknowledges them. A revoke:

1. stops handing out new holds for the partitions (``revoking``);
2. waits (up to a bound) until the batches already held are stored and committed: what is stored
   gets committed before the partition goes (fewer re-reads for the next owner);
3. drops the epochs. A delivery of a dropped epoch is never held and never committed by this
   consumer again; the new owner re-reads from the last commit.

Read from the reader thread (``assign``/``revoke`` run inside the consumer's poll), and from the
writer thread (``hold``, ``commit_lock``), hence the one condition variable.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

from fleetlens.logsetup import get_logger

log = get_logger(__name__)

Key = tuple[str, int]  # (topic, partition)


class PartitionLeases:
    """Epochs of the partitions this consumer owns, and the batches in flight on them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._epochs = itertools.count(1)
        self._owned: dict[Key, int] = {}
        self._revoking: set[Key] = set()
        self._uncommitted: set[Key] = set()
        self._held: Counter[Key] = Counter()

    def assign(self, keys: Iterable[Key]) -> None:
        """New partitions for this consumer: a new epoch each, re-read from the group's last commit."""
        with self._cond:
            for key in keys:
                self._owned[key] = next(self._epochs)
                self._uncommitted.add(key)
                self._revoking.discard(key)

    def revoke(self, keys: Iterable[Key], wait_s: float) -> None:
        """Take partitions away, after the batches held on them are stored (waiting at most ``wait_s``)."""
        keys = set(keys)
        with self._cond:
            self._revoking |= keys
            started = time.monotonic()
            done = self._cond.wait_for(lambda: not any(self._held[k] for k in keys), timeout=wait_s)
            if not done:
                log.warning("partitions revoked while a batch of theirs is still being stored; it will not be "
                            "committed by this consumer", partitions=sorted(keys), waited_s=round(time.monotonic() - started, 1))
            for key in keys:
                self._owned.pop(key, None)
                self._uncommitted.discard(key)
                self._revoking.discard(key)

    def reading_epoch(self, key: Key) -> int | None:
        """The epoch to stamp on messages read from ``key`` now; None when they must be dropped."""
        return None if key in self._revoking else self._owned.get(key)

    def owns(self, key: Key) -> bool:
        """True while ``key`` is assigned to this consumer."""
        return key in self._owned

    def uncommitted(self, key: Key) -> bool:
        """True until this consumer's first commit on ``key`` since it was assigned (reads may repeat earlier ones)."""
        return key in self._uncommitted

    def _current(self, key: Key, epoch: int) -> bool:
        return self._owned.get(key) == epoch

    @contextmanager
    def hold(self, deliveries: Sequence, key_of, epoch_of) -> Iterator[list]:
        """Hold the deliveries whose partition epoch is still current; yields them (a revoke waits for them)."""
        with self._cond:
            held = [d for d in deliveries if key_of(d) not in self._revoking and self._current(key_of(d), epoch_of(d))]
            for d in held:
                self._held[key_of(d)] += 1
        try:
            yield held
        finally:
            with self._cond:
                for d in held:
                    self._held[key_of(d)] -= 1
                self._cond.notify_all()

    @contextmanager
    def commit_lock(self) -> Iterator[None]:
        """Held across deciding what to commit and committing it, so a revoke cannot land in between."""
        with self._cond:
            yield

    def committable(self, key: Key, epoch: int) -> bool:
        """May work of ``epoch`` on ``key`` be committed (call under ``commit_lock``)."""
        return self._current(key, epoch)

    def committed(self, keys: Iterable[Key]) -> None:
        """This consumer has committed on ``keys``: later reads are first deliveries again."""
        with self._cond:
            self._uncommitted.difference_update(keys)
