"""Which partitions a consumer owns right now, what it may still commit, and what may be a redelivery.

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

Redeliveries are known exactly, across consumers and crashes: every commit carries, as its
metadata, the partition's *mark*, the offset after the newest message any consumer of the group
ever handed out for storing there, and a consumer hands messages out only once a commit has
announced a mark covering them. So whatever was stored past the group's commit (a crash between
storing and committing, a session that expired while commits failed) lies below the mark. A new
assignment first *inherits* the committed offset and mark (``inherit``); reads below that mark
are flagged possible redeliveries (ingest checks the store for them), reads past it are not.

The writer thread never waits on the network while holding the lock: a synchronous commit made
from it while librdkafka waits for the revoke callback would deadlock.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from fleetlens.logsetup import get_logger

log = get_logger(__name__)

Key = tuple[str, int]  # (topic, partition)

MARK_PREFIX = "fleetlens.handed_out="


def mark_metadata(mark: int) -> str:
    """The commit metadata announcing ``mark``."""
    return f"{MARK_PREFIX}{mark}"


def parse_mark(metadata: str | None) -> int:
    """The mark a commit's metadata announces; 0 when it announces none (no fleetlens consumer committed)."""
    if metadata and metadata.startswith(MARK_PREFIX):
        try:
            return max(0, int(metadata[len(MARK_PREFIX):]))
        except ValueError:
            pass
    return 0


@dataclass
class CommitPlan:
    """What one commit sends: per partition the offset and the mark, and which offsets came from ``ack``."""

    offsets: dict[Key, tuple[int, int]] = field(default_factory=dict)  # key -> (offset, mark)
    acked: dict[Key, int] = field(default_factory=dict)  # the recorded offsets taken into it
    reading: dict[Key, int] = field(default_factory=dict)  # key -> end of what this commit announces


class PartitionLeases:
    """Epochs of the partitions this consumer owns, the batches in flight on them, and their marks."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._epochs = itertools.count(1)
        self._owned: dict[Key, int] = {}
        self._revoking: set[Key] = set()
        self._held: Counter[Key] = Counter()
        self._ready: dict[Key, int] = {}  # offsets recorded by the writer, not yet committed
        self._to_inherit: set[Key] = set()  # assigned, committed offset and mark not fetched yet
        self._base: dict[Key, int] = {}  # the group's committed offset, as last known
        self._below: dict[Key, int] = {}  # reads below this offset may be redeliveries (this assignment)
        self._mark: dict[Key, int] = {}  # the mark announced so far (this assignment)
        self._handed_out: dict[Key, int] = {}  # offset after the newest message this consumer handed out, ever

    def assign(self, keys: Iterable[Key]) -> None:
        """New partitions for this consumer: a new epoch each, re-read from the group's last commit."""
        with self._cond:
            for key in keys:
                self._owned[key] = next(self._epochs)
                self._revoking.discard(key)
                self._to_inherit.add(key)

    def to_inherit(self) -> list[Key]:
        """Owned partitions whose committed offset and mark are not known yet (see ``inherit``)."""
        with self._cond:
            return sorted(self._to_inherit)

    def inherit(self, key: Key, offset: int, mark: int) -> None:
        """The group's committed ``offset`` (negative: none) and announced ``mark`` for ``key``."""
        with self._cond:
            if key not in self._to_inherit:
                return
            self._to_inherit.discard(key)
            if offset >= 0:
                self._base[key] = offset
            self._below[key] = self._mark[key] = max(mark, self._handed_out.get(key, 0))

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
                self._revoking.discard(key)
                self._ready.pop(key, None)
                self._to_inherit.discard(key)
                for per_key in (self._base, self._below, self._mark):
                    per_key.pop(key, None)

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
        """Whether messages of ``key`` from ``first_offset`` on may have been handed out (and stored) before."""
        return first_offset < self._below.get(key, self._handed_out.get(key, 0))

    def handed_out(self, key: Key) -> int:
        """The offset after the newest message of ``key`` this consumer ever handed out (0: none)."""
        return self._handed_out.get(key, 0)

    def announced(self, key: Key, end: int) -> bool:
        """True when a commit has announced a mark of ``key`` at or past ``end`` (its reads may be handed out)."""
        return self._handed_out.get(key, 0) >= end

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

    def plan(self, keys: Iterable[Key] | None = None, reading: dict[Key, tuple[int, int]] | None = None) -> CommitPlan:
        """Take the recorded offsets (of ``keys``, or all) and announce ``reading`` ({key: (first, end)}).

        A partition only being read commits its known offset again (else the first offset read), with
        the mark moved to the end of what is read. Partitions not inherited yet are left out.
        """
        plan = CommitPlan()
        with self._cond:
            chosen = list(self._ready) if keys is None else [k for k in keys if k in self._ready]
            for key in chosen:
                plan.acked[key] = self._ready.pop(key)
            for key, (first, end) in (reading or {}).items():
                if key in self._owned and key not in self._to_inherit:
                    plan.reading[key] = end
            for key in {*plan.acked, *plan.reading}:
                offset = plan.acked.get(key, self._base.get(key, (reading or {}).get(key, (0, 0))[0]))
                plan.offsets[key] = (offset, max(self._mark.get(key, 0), plan.reading.get(key, 0)))
        return plan

    def done(self, plan: CommitPlan) -> None:
        """``plan`` was committed: its offsets are the group's, its reads may be handed out."""
        with self._cond:
            for key, (offset, mark) in plan.offsets.items():
                if key in self._owned:
                    self._base[key] = offset
                    self._mark[key] = max(self._mark.get(key, 0), mark)
            for key, end in plan.reading.items():
                self._handed_out[key] = max(self._handed_out.get(key, 0), end)

    def failed(self, plan: CommitPlan) -> None:
        """``plan``'s commit failed: its acknowledged offsets are recorded again (if still owned) for the next try."""
        with self._cond:
            for key, offset in plan.acked.items():
                if key in self._owned:
                    self._ready[key] = max(self._ready.get(key, 0), offset)
