"""Redis Streams transport: a consumer in a consumer group, and a producer.

Reading order of ``RedisStreamSource.read``:

1. on start, this consumer's own pending entries (read with id ``0``): what it was handed before a
   crash and never acknowledged;
2. every ``claim_every_s``, entries another consumer left pending for ``claim_min_idle_ms``
   (``XPENDING`` + ``XCLAIM``): that consumer is presumed dead;
3. otherwise new entries (``>``), blocking up to the timeout.

(1) and (2) are flagged ``redelivered`` so ingest checks the store for events it already holds.

Entries are acknowledged (``XACK``) only through ``ack``, i.e. after the store holds them. Trimming
keeps the stream bounded without ever dropping an entry some group still needs: only entries below
every group's oldest pending / last delivered id, and older than ``retain_s``, go.

A read can fail after the server carried it out: the server is killed or the connection drops
between its log write and its answer. The entries are then pending for this consumer although it
never got them, and no path above would ever hand them out (``>`` is past them, the own-pending
pass only runs on start, claims skip this consumer's entries). So after a failed read, the next
read first recovers them: this consumer's pending entries newer than anything it was handed, plus
those a claim whose answer was lost did move to it. Entries it was handed but not yet acknowledged are never
among them (they are in flight in the worker), so nothing is handed out twice by this process.
A ``>`` read that returns entries at or below the newest one handed out (a server restarted without
its last writes, ``appendfsync everysec``) is flagged ``redelivered`` too. A server that lost the
group altogether (restarted without its data, or the group deleted) answers ``NOGROUP``: the group
is created again and reading goes on from the stream's first entry, flagged ``redelivered`` up to the
newest entry the stream held then (it may be stored already).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from typing import Sequence

import redis

from fleetlens.logsetup import get_logger
from fleetlens.settings import RedisSettings
from fleetlens.sources.base import DeadLetter, Delivery, Lag

log = get_logger(__name__)

DATA_FIELD = b"data"
DLQ_MAXLEN = 1_000_000  # approximate cap; every dead letter is also kept in the store's rejections table
_TRIM_EVERY_S = 10.0


def connect(url: str, **kwargs: object) -> redis.Redis:
    """A redis-py client for a ``redis://`` url (``valkey://`` is accepted too)."""
    if url.startswith("valkey://"):
        url = "redis://" + url[len("valkey://") :]
    return redis.Redis.from_url(url, **kwargs)


def xreadgroup_raw(
    client: redis.Redis, group: str, consumer: str, streams: dict[str, str], count: int, block_ms: int | None
) -> list[tuple[bytes, list]]:
    """XREADGROUP without redis-py's response callbacks: ``[(stream, [[id, [field, value, …]], …])]``.

    The callbacks build a tuple and a dict per entry; skipping them makes the hot read ~35 % faster
    (docs/benchmarks.md). Entries deleted while pending come back as ``[id, None]``.
    """
    args: list[object] = ["XREADGROUP", "GROUP", group, consumer, "COUNT", count]
    if block_ms is not None:
        args += ["BLOCK", block_ms]
    args += ["STREAMS", *streams.keys(), *streams.values()]
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_command(*args)
        response = conn.read_response()
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    if not response:
        return []
    if isinstance(response, dict):  # RESP3 answers a map
        return list(response.items())
    return [(stream, entries) for stream, entries in response]


def _flat(entries: list) -> list:
    """redis-py's parsed entries ``(id, {field: value})`` in the raw shape ``[id, [field, value, …]]``."""
    return [[entry_id, [x for kv in fields.items() for x in kv] if fields else None] for entry_id, fields in entries]


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create the consumer group (and the stream) if missing; a new group starts at the stream's first entry."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _next_id(entry_id: bytes) -> str:
    ms, _, seq = entry_id.partition(b"-")
    return f"{int(ms)}-{int(seq or 0) + 1}"


class RedisStreamSource:
    """One consumer of a consumer group over one or more streams (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        streams: Sequence[str],
        group: str,
        consumer: str,
        dlq_stream: str,
        settings: RedisSettings,
    ):
        self.client = client
        self.streams = list(streams)
        self.group = group
        self.consumer = consumer
        self.dlq_stream = dlq_stream
        self.settings = settings
        for stream in self.streams:
            ensure_group(client, stream, group)
        # Own pending entries still to re-read after a restart, per stream: the id to read after.
        self._own_pending: dict[str, str] = {s: "0" for s in self.streams}
        # The newest entry id handed out per stream, as (ms, seq): a read's entries newer than it
        # that are pending for this consumer were lost in transit (see the module docstring).
        self._newest: dict[str, tuple[int, int]] = {}
        self._read_failed = False  # a read raised: it may have been carried out, its answer lost
        self._unanswered_claims: dict[str, list] = {}  # ids of a claim whose answer was lost, per stream
        self._next_claim = time.monotonic() + settings.claim_every_s
        self._next_trim = time.monotonic() + _TRIM_EVERY_S

    # -- reading ---------------------------------------------------------------------------------

    def read(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        """Up to ``max_messages`` entries: own pending first, then claimed, then new ones.

        After a read that raised, entries that read may have taken come first (module docstring).
        """
        try:
            return self._read(max_messages, timeout_s)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                self._read_failed = True
                raise
            self._recreate_groups(str(exc))
            return []
        except BaseException:
            self._read_failed = True
            raise

    def _recreate_groups(self, error: str) -> None:
        """The server no longer has the stream or the group (restarted without its data, or deleted):
        create them again from the stream's first entry and forget every id of before."""
        log.warning("consumer group or stream missing on the server (restarted without its data?): recreating it",
                    group=self.group, streams=self.streams, error=error[:200])
        self._own_pending.clear()
        self._unanswered_claims.clear()
        self._read_failed = False
        for stream in self.streams:
            ensure_group(self.client, stream, self.group)
            # What the stream holds now may have been stored already (a group deleted by hand over a
            # full stream): everything up to its newest entry is handed out flagged redelivered.
            self._newest[stream] = _id_key(self.client.xinfo_stream(stream)["last-generated-id"])

    def _read(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        if self._read_failed:
            recovered = self._recover_lost_reads()
            self._read_failed = False
            if recovered:
                return recovered
        if self._own_pending:
            deliveries = self._read_own_pending(max_messages)
            if deliveries:
                return deliveries
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + self.settings.claim_every_s
            claimed = self._claim_abandoned(max_messages)
            if claimed:
                return claimed
        if now >= self._next_trim:
            self._next_trim = now + _TRIM_EVERY_S
            self.trim()
        block_ms = max(1, int(min(timeout_s * 1000, self.settings.block_ms)))
        response = xreadgroup_raw(
            self.client,
            self.group,
            self.consumer,
            {s: ">" for s in self.streams},
            count=min(max_messages, self.settings.read_count),
            block_ms=block_ms,
        )
        return self._deliveries(response, redelivered=False)

    def _recover_lost_reads(self) -> list[Delivery]:
        """This consumer's pending entries that a failed read took but never handed out."""
        if self._own_pending:
            return []  # the own-pending pass reads by id and moves nothing: a failed one is simply redone
        deliveries: list[Delivery] = []
        for stream in self.streams:
            newest = self._newest.get(stream)
            lost = set(self._own_pending_ids(stream, "-" if newest is None else f"{newest[0]}-{newest[1] + 1}", "+"))
            unanswered = self._unanswered_claims.get(stream)
            if unanswered:
                # Only those the claim did move to this consumer: the others are still the dead
                # consumer's (the next claim takes them) or another live consumer's by now.
                keys = sorted(unanswered, key=_id_key)
                lost |= set(unanswered) & set(self._own_pending_ids(stream, keys[0], keys[-1]))
            if not lost:
                continue
            ids = sorted(lost, key=_id_key)
            # Kept until all streams are done: if a later one fails, these are taken again next time.
            self._unanswered_claims[stream] = ids
            deliveries.extend(self._take(stream, ids, 0, "recovered entries a failed read had taken"))
        self._unanswered_claims.clear()
        return deliveries

    def _own_pending_ids(self, stream: str, low: bytes | str, high: bytes | str) -> list[bytes]:
        """Ids pending for this consumer between ``low`` and ``high`` (inclusive), page by page."""
        ids: list[bytes] = []
        while True:
            page = self.client.xpending_range(stream, self.group, min=low, max=high, count=10_000,
                                              consumername=self.consumer)
            ids += [p["message_id"] for p in page]
            if len(page) < 10_000:
                return ids
            low = _next_id(page[-1]["message_id"])

    def _read_own_pending(self, max_messages: int) -> list[Delivery]:
        response = xreadgroup_raw(
            self.client,
            self.group,
            self.consumer,
            dict(self._own_pending),
            count=min(max_messages, self.settings.read_count),
            block_ms=None,
        )
        seen = {self._name(stream) for stream, entries in response if entries}
        for stream, entries in response:
            if entries:
                self._own_pending[self._name(stream)] = entries[-1][0].decode()
        for stream in list(self._own_pending):
            if stream not in seen:
                del self._own_pending[stream]
                log.info("own pending entries re-read", stream=stream, consumer=self.consumer)
        return self._deliveries(response, redelivered=True)

    def _claim_abandoned(self, max_messages: int) -> list[Delivery]:
        """Take over entries other consumers left pending too long (never this consumer's own in-flight ones)."""
        deliveries: list[Delivery] = []
        for stream in self.streams:
            stale = self.client.xpending_range(
                stream,
                self.group,
                min="-",
                max="+",
                count=min(max_messages, self.settings.read_count),
                idle=self.settings.claim_min_idle_ms,
            )
            ids = [p["message_id"] for p in stale if self._name(p["consumer"]) != self.consumer]
            if not ids:
                continue
            self._unanswered_claims[stream] = ids  # until handed out: recovered if the answer never comes
            deliveries.extend(self._take(stream, ids, self.settings.claim_min_idle_ms, "claimed entries of a dead consumer"))
        self._unanswered_claims.clear()
        return deliveries

    def _take(self, stream: str, ids: list, min_idle_ms: int, why: str) -> list[Delivery]:
        """XCLAIM ``ids`` for this consumer and hand them out as redelivered; ids no longer in the stream are acked."""
        entries = self.client.xclaim(stream, self.group, self.consumer, min_idle_ms, ids)
        present = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
        missing = set(ids) - {entry_id for entry_id, _ in present}
        if missing:
            # Trimmed or deleted while pending: nothing left to store; drop them from the PEL.
            self.client.xack(stream, self.group, *missing)
            log.warning("pending entries were deleted from the stream", stream=stream, count=len(missing))
        if not present:
            return []
        log.warning(why, stream=stream, count=len(present), consumer=self.consumer)
        return self._deliveries([(stream, _flat(present))], redelivered=True)

    @staticmethod
    def _name(stream: bytes | str) -> str:
        return stream.decode() if isinstance(stream, bytes) else stream

    def _deliveries(self, response: list[tuple[bytes, list]], redelivered: bool) -> list[Delivery]:
        """Raw XREADGROUP entries as columnar deliveries; positions stay bytes (XACK takes them as they are)."""
        deliveries = []
        for stream, entries in response:
            if not entries:
                continue
            positions = [entry[0] for entry in entries]
            name = self._name(stream)
            # Entries come in id order (claims too: XPENDING lists them so); a fresh read at or below
            # what was already handed out means the server lost its own record of that hand-out.
            first, last = _id_key(positions[0]), _id_key(positions[-1])
            newest = self._newest.get(name)
            again = redelivered or (newest is not None and first <= newest)
            if newest is None or last > newest:
                self._newest[name] = last
            # The collectors' shape [id, ["data", payload]] is read inline; anything else is looked at closely.
            payloads = [f[1] if f and f[0] == DATA_FIELD else None for _, f in entries]
            delivery = Delivery(name, 0, positions, payloads, again)  # type: ignore[arg-type]
            if None in payloads:
                self._mark_malformed(delivery, entries)
            deliveries.append(delivery)
        return deliveries

    @staticmethod
    def _mark_malformed(delivery: Delivery, entries: list) -> None:
        """Entries whose ``data`` field is not first, missing (dead letter), or deleted while pending (skipped)."""
        for i, (entry_id, fields) in enumerate(entries):
            if delivery.payloads[i] is not None:
                continue
            pairs = dict(zip(fields[::2], fields[1::2])) if fields else {}
            if DATA_FIELD in pairs:
                delivery.payloads[i] = pairs[DATA_FIELD]
                continue
            delivery.payloads[i] = b""
            if pairs:
                reason = f"stream entry has no 'data' field (fields: {sorted(k.decode(errors='replace') for k in pairs)})"
                raw = b" ".join(k + b"=" + v for k, v in pairs.items())
                delivery.malformed.append(
                    DeadLetter(delivery.stream, 0, entry_id.decode(), 0, "", "payload", reason, raw)
                )

    # -- acknowledging, dead letters, lag ------------------------------------------------------

    def hold(self, deliveries: Sequence[Delivery]) -> AbstractContextManager[list[Delivery]]:
        """Every delivery: pending entries stay this consumer's until another one claims them as abandoned."""
        return nullcontext(list(deliveries))

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """XACK every entry of the deliveries (one round trip per stream)."""
        by_stream: dict[str, list[str]] = {}
        for delivery in deliveries:
            by_stream.setdefault(delivery.stream, []).extend(delivery.positions)
        with self.client.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                for start in range(0, len(ids), 10_000):
                    pipe.xack(stream, self.group, *ids[start : start + 10_000])
            pipe.execute()

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """XADD each rejected line to the dead-letter stream with its source and reason."""
        if not letters:
            return
        with self.client.pipeline(transaction=False) as pipe:
            for letter in letters:
                pipe.xadd(
                    self.dlq_stream,
                    {
                        "data": letter.raw,
                        "source": letter.stream,
                        "partition": letter.partition,
                        "position": letter.position,
                        "line": letter.line,
                        "event_id": letter.event_id,
                        "field": letter.field,
                        "reason": letter.reason,
                    },
                    maxlen=DLQ_MAXLEN,
                    approximate=True,
                )
            pipe.execute()

    def lag(self) -> Lag:
        """Entries not yet delivered to the group and entries delivered but not acknowledged, per stream."""
        lag = Lag()
        for stream in self.streams:
            for info in self.client.xinfo_groups(stream):
                if self._name(info["name"]) == self.group:
                    undelivered = info.get("lag")
                    lag.undelivered[stream] = int(undelivered) if undelivered is not None else -1
                    lag.pending[stream] = int(info["pending"])
        return lag

    def partitions(self) -> list[str]:
        """Every stream, as ``stream/0`` (a consumer of a group may get entries of any of them)."""
        return [f"{stream}/0" for stream in self.streams]

    def trim(self) -> int:
        """Drop entries every group has acknowledged and that are older than ``retain_s``; returns how many."""
        removed = 0
        cutoff_ms = int(time.time() * 1000) - self.settings.retain_s * 1000
        for stream in self.streams:
            keep_from: str | None = None
            for info in self.client.xinfo_groups(stream):
                if int(info["pending"]):
                    oldest = self.client.xpending(stream, info["name"])["min"].decode()
                else:
                    oldest = _next_id(info["last-delivered-id"])
                if keep_from is None or _id_key(oldest) < _id_key(keep_from):
                    keep_from = oldest
            if keep_from is None:
                continue
            if _id_key(keep_from) > (cutoff_ms, 0):
                keep_from = f"{cutoff_ms}-0"
            removed += int(self.client.xtrim(stream, minid=keep_from, approximate=True))
        return removed

    def close(self) -> None:
        """Close the connection; unacknowledged entries stay pending for this consumer name."""
        self.client.close()


def _id_key(entry_id: str | bytes) -> tuple[int, int]:
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class RedisStreamSink:
    """Producer: XADD payloads to a stream (field ``data``), pipelined."""

    def __init__(self, client: redis.Redis, pipeline_size: int = 1000):
        self.client = client
        self.pipeline_size = pipeline_size

    def send(self, stream: str, payloads: Sequence[bytes], keys: Sequence[str] | None = None) -> None:
        """Append every payload to ``stream``, in order; keys are not used by Redis Streams."""
        for start in range(0, len(payloads), self.pipeline_size):
            with self.client.pipeline(transaction=False) as pipe:
                for payload in payloads[start : start + self.pipeline_size]:
                    pipe.xadd(stream, {DATA_FIELD: payload})
                pipe.execute()

    def close(self) -> None:
        """Close the connection."""
        self.client.close()
