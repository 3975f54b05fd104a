"""Which partitions a consumer owns right now, and which of its handed-out work it may still commit.

A Kafka consumer group moves partitions between consumers (rebalance). Each assignment of a
partition to this consumer gets a fresh *epoch*; a delivery carries the epoch it was read under.
The ingest writer *holds* a batch's deliveries while it stores them, then *records* their offsets
as ready to commit (checked against the epoch, no network call). The reader thread, which polls
the consumer, takes the recorded offsets and commits them. A revoke (in the reader thread):

1. stops handing out new holds for the partitions (``start_revoke``);
2. waits (up to a bound) until the batches already held are stored (``wait_released``) and commits
   what they recorded: what is stored gets committed before the partition goes;
3. drops the epochs and anything still recorded for them (``drop``). A delivery of a dropped
   epoch is never held and never committed by this consumer again; the new owner re-reads from
   the last commit.

Which re-reads may repeat stored work: a partition *lost* (session expired: nothing committed
first) or whose commit failed may have been stored beyond its last commit. When it comes back,
everything below the highest offset this consumer ever handed out there (``handed_out``, kept
across assignments) is flagged a possible redelivery, however many commits come in between; so
is everything before this consumer's first commit of the assignment, which covers another
consumer's uncommitted work (see ``redelivered``).

The writer thread never waits on the network while holding the lock: a synchronous commit made
from it while librdkafka waits for the revoke callback would deadlock.
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
        self._ready: dict[Key, int] = {}  # offsets recorded by the writer, not yet committed
        self._handed_out: dict[Key, int] = {}  # offset after the newest message ever read, across assignments

    def assign(self, keys: Iterable[Key]) -> None:
        """New partitions for this consumer: a new epoch each, re-read from the group's last commit."""
        with self._cond:
            for key in keys:
                self._owned[key] = next(self._epochs)
                self._uncommitted.add(key)
                self._revoking.discard(key)

    def start_revoke(self, keys: Iterable[Key]) -> None:
        """No new holds on ``keys`` from now on."""
        with self._cond:
            self._revoking |= set(keys)

    def wait_released(self, keys: Iterable[Key], wait_s: float) -> bool:
        """Wait up to ``wait_s`` until no batch on ``keys`` is held; False when one still is."""
        keys = set(keys)
        with self._cond:
            done = self._cond.wait_for(lambda: not any(self._held[k] for k in keys), timeout=wait_s)
        if not done:
            log.warning("partitions revoked while a batch of theirs is still being stored; it will not be "
                        "committed by this consumer", partitions=sorted(keys))
        return done

    def drop(self, keys: Iterable[Key]) -> None:
        """Forget ``keys``: their epochs and whatever offsets are still recorded for them."""
        with self._cond:
            for key in keys:
                self._owned.pop(key, None)
                self._uncommitted.discard(key)
                self._revoking.discard(key)
                self._ready.pop(key, None)

    def reading_epoch(self, key: Key) -> int | None:
        """The epoch to stamp on messages read from ``key`` now; None when they must be dropped."""
        return None if key in self._revoking else self._owned.get(key)

    def owned(self) -> list[Key]:
        """The partitions assigned now."""
        with self._cond:
            return list(self._owned)

    def owns(self, key: Key) -> bool:
        """True while ``key`` is assigned to this consumer."""
        return key in self._owned

    def redelivered(self, key: Key, first_offset: int) -> bool:
        """Whether messages of ``key`` from ``first_offset`` on may have been handed out (and stored) before.

        True below the offset after the newest message this consumer ever read there (a partition lost
        with stored but uncommitted work comes back below it), and until this consumer's first commit
        on ``key`` since it was assigned (another consumer may have stored past the group's commit).
        """
        return key in self._uncommitted or first_offset < self._handed_out.get(key, 0)

    def handed_out(self, key: Key, next_offset: int) -> None:
        """Messages of ``key`` up to ``next_offset`` (excluded) were handed out for storing."""
        if next_offset > self._handed_out.get(key, 0):
            self._handed_out[key] = next_offset

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

    def record(self, offsets: dict[tuple[Key, int], int]) -> None:
        """Offsets to commit, per (partition, epoch); those of an epoch no longer current are left out."""
        with self._cond:
            for (key, epoch), offset in offsets.items():
                if self._current(key, epoch):
                    self._ready[key] = max(self._ready.get(key, 0), offset)

    def take(self, keys: Iterable[Key] | None = None) -> dict[Key, int]:
        """Remove and return the recorded offsets (of ``keys``, or all)."""
        with self._cond:
            chosen = list(self._ready) if keys is None else [k for k in keys if k in self._ready]
            return {k: self._ready.pop(k) for k in chosen}

    def put_back(self, offsets: dict[Key, int]) -> None:
        """Offsets whose commit failed: recorded again (if still owned) for the next try."""
        with self._cond:
            for key, offset in offsets.items():
                if key in self._owned:
                    self._ready[key] = max(self._ready.get(key, 0), offset)

    def committed(self, keys: Iterable[Key]) -> None:
        """This consumer has committed on ``keys``: later reads are first deliveries again."""
        with self._cond:
            self._uncommitted.difference_update(keys)
