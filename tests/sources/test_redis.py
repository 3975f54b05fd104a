"""The Redis Streams transport against a real Redis-protocol server."""

from __future__ import annotations

import select
import socket
import threading
import time
from contextlib import contextmanager

import redis

from fleetlens.settings import RedisSettings
from fleetlens.sources.base import DeadLetter
from fleetlens.sources.redis import RedisStreamSink, RedisStreamSource, connect

STREAM = "fleet.events"


def make_source(client, consumer="c1", **overrides) -> RedisStreamSource:
    settings = RedisSettings(**{"block_ms": 50, "claim_every_s": 0.1, "claim_min_idle_ms": 200, **overrides})
    return RedisStreamSource(client, [STREAM], "ingest", consumer, "fleet.events.dlq", settings)


def read_all(source: RedisStreamSource, rounds: int = 5):
    out = []
    for _ in range(rounds):
        out.extend(source.read(10_000, 0.05))
    return out


def test_reads_new_entries_and_acks(redis_client):
    RedisStreamSink(redis_client).send(STREAM, [b"p%d" % i for i in range(25)])
    source = make_source(redis_client)
    deliveries = read_all(source)
    payloads = [p for d in deliveries for p in d.payloads]
    assert payloads == [b"p%d" % i for i in range(25)]
    assert not any(d.redelivered for d in deliveries)
    assert source.lag().pending[STREAM] == 25
    source.ack(deliveries)
    lag = source.lag()
    assert lag.pending[STREAM] == 0 and lag.undelivered[STREAM] == 0 and lag.total == 0


def test_group_created_before_entries_sees_them_and_lag_counts_undelivered(redis_client):
    source = make_source(redis_client)
    RedisStreamSink(redis_client).send(STREAM, [b"x"] * 7)
    assert source.lag().undelivered[STREAM] == 7
    assert sum(len(d) for d in read_all(source)) == 7


def test_restarted_consumer_rereads_its_own_pending_entries_first(redis_client):
    RedisStreamSink(redis_client).send(STREAM, [b"a", b"b", b"c"])
    first = make_source(redis_client)
    handed = read_all(first)
    assert sum(len(d) for d in handed) == 3  # never acknowledged: the "crash"
    RedisStreamSink(redis_client).send(STREAM, [b"d"])
    restarted = make_source(connect(f"redis://{redis_client.connection_pool.connection_kwargs['host']}:"
                                    f"{redis_client.connection_pool.connection_kwargs['port']}"))
    deliveries = read_all(restarted)
    redelivered = [p for d in deliveries if d.redelivered for p in d.payloads]
    fresh = [p for d in deliveries if not d.redelivered for p in d.payloads]
    assert redelivered == [b"a", b"b", b"c"]
    assert fresh == [b"d"]


def test_entries_of_a_dead_consumer_are_claimed(redis_client):
    RedisStreamSink(redis_client).send(STREAM, [b"1", b"2"])
    dead = make_source(redis_client, consumer="dead")
    assert sum(len(d) for d in read_all(dead)) == 2
    alive = make_source(redis_client, consumer="alive")
    assert read_all(alive, rounds=1) == []  # not idle long enough yet
    time.sleep(0.3)
    deliveries = read_all(alive)
    assert [p for d in deliveries for p in d.payloads] == [b"1", b"2"]
    assert all(d.redelivered for d in deliveries)
    alive.ack(deliveries)
    assert alive.lag().total == 0


def test_entry_without_data_field_becomes_a_dead_letter(redis_client):
    redis_client.xadd(STREAM, {"payload": "oops"})
    source = make_source(redis_client)
    (delivery,) = read_all(source)
    assert delivery.payloads == [b""]
    (letter,) = delivery.malformed
    assert letter.field == "payload" and "no 'data' field" in letter.reason and letter.raw == b"payload=oops"


def test_dead_letters_carry_bytes_source_and_reason(redis_client):
    source = make_source(redis_client)
    source.dead_letter([DeadLetter(STREAM, 0, "1-0", 2, "e9", "level", "level must be one of ...", b"\xff{bad")])
    ((_id, fields),) = redis_client.xrange("fleet.events.dlq")
    assert fields[b"data"] == b"\xff{bad"
    assert fields[b"source"] == STREAM.encode() and fields[b"position"] == b"1-0" and fields[b"line"] == b"2"
    assert fields[b"field"] == b"level" and fields[b"reason"].startswith(b"level must")


def test_trim_never_drops_unacknowledged_entries(redis_client):
    sink = RedisStreamSink(redis_client)
    sink.send(STREAM, [b"old%d" % i for i in range(300)])
    source = make_source(redis_client, retain_s=0)
    deliveries = read_all(source)
    source.ack(deliveries[:1])  # a first delivery acknowledged, the rest pending
    acked = len(deliveries[0])
    source.trim()
    assert redis_client.xlen(STREAM) >= 300 - acked
    source.ack(deliveries)
    sink.send(STREAM, [b"new"])
    source.trim()
    remaining = [fields[b"data"] for _, fields in redis_client.xrange(STREAM)]
    assert b"new" in remaining  # undelivered: kept
    assert len(remaining) < 301


class ReplyDroppingProxy:
    """A TCP proxy in front of the real server that, once armed with some byte patterns, lets the
    next command containing all of them reach the server and then cuts the connection instead of
    passing the answer on: the server carried the command out, the client never saw it (a server
    killed between its log write and its reply looks the same to the client)."""

    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed: tuple[bytes, ...] = ()  # patterns of the command whose answer to drop
        self.swallow = False  # drop the command itself instead: the server never carries it out
        self.dropped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client, server) -> None:
        drop_answer = False
        try:
            while True:
                ready, _, _ = select.select([client, server], [], [])
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        if self.armed and all(p.upper() in data.upper() for p in self.armed):
                            self.armed, drop_answer = (), True
                            if self.swallow:
                                self.dropped += 1
                                return
                        server.sendall(data)
                    elif drop_answer:
                        self.dropped += 1
                        return  # the answer is thrown away with the connection
                    else:
                        client.sendall(data)
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self.listener.close()


@contextmanager
def _through_proxy(redis_client):
    """A proxy in front of the test's server and a client connected through it; both closed after."""
    kwargs = redis_client.connection_pool.connection_kwargs
    proxy = ReplyDroppingProxy(kwargs["host"], kwargs["port"])
    client = connect(f"redis://127.0.0.1:{proxy.port}")
    try:
        yield proxy, client
    finally:
        client.close()
        proxy.close()


def _read_until_quiet(source: RedisStreamSource, rounds: int = 8):
    """Read like a worker does: a failed read is retried, whatever comes is kept."""
    out, failures = [], 0
    for _ in range(rounds):
        try:
            out.extend(source.read(10_000, 0.05))
        except redis.ConnectionError:
            failures += 1
    return out, failures


def test_entries_a_read_took_before_its_answer_was_lost_are_handed_out_after_the_failure(redis_client):
    with _through_proxy(redis_client) as (proxy, client):
        sink = RedisStreamSink(redis_client)
        sink.send(STREAM, [b"a%d" % i for i in range(30)])
        source = make_source(client, read_count=10)
        first = source.read(10_000, 0.05)
        assert [p for d in first for p in d.payloads] == [b"a%d" % i for i in range(10)]
        proxy.armed = (b"XREADGROUP", b"$1\r\n>\r\n")  # the server hands a10..a19 to c1; c1 never hears of it
        deliveries, failures = _read_until_quiet(source)
        assert proxy.dropped == 1 and failures == 1
        payloads = [p for d in first + deliveries for p in d.payloads]
        assert payloads == sorted(payloads, key=lambda p: int(p[1:])) == [b"a%d" % i for i in range(30)]
        assert [d.redelivered for d in deliveries if d.payloads[0] == b"a10"] == [True]
        source.ack(first + deliveries)
        assert source.lag().total == 0  # nothing left pending for ever


def test_entries_a_claim_took_before_its_answer_was_lost_are_handed_out_after_the_failure(redis_client):
    RedisStreamSink(redis_client).send(STREAM, [b"1", b"2", b"3"])
    dead = make_source(redis_client, consumer="dead")
    assert sum(len(d) for d in read_all(dead)) == 3
    time.sleep(0.3)
    with _through_proxy(redis_client) as (proxy, client):
        alive = make_source(client, consumer="alive")
        alive.read(10_000, 0.05)  # its own (empty) pending pass
        time.sleep(0.15)
        proxy.armed = (b"XCLAIM",)
        deliveries, failures = _read_until_quiet(alive)
        assert proxy.dropped == 1 and failures == 1
        assert sorted(p for d in deliveries for p in d.payloads) == [b"1", b"2", b"3"]
        assert all(d.redelivered for d in deliveries)
        alive.ack(deliveries)
        assert alive.lag().total == 0


def test_a_claim_that_never_reached_the_server_takes_nothing_from_a_consumer_that_claimed_since(redis_client):
    RedisStreamSink(redis_client).send(STREAM, [b"1", b"2"])
    dead = make_source(redis_client, consumer="dead")
    assert sum(len(d) for d in read_all(dead)) == 2
    time.sleep(0.3)
    with _through_proxy(redis_client) as (proxy, client):
        alive = make_source(client, consumer="alive", claim_every_s=60)
        alive.read(10_000, 0.05)
        alive._next_claim = 0  # claim at the next read
        proxy.armed, proxy.swallow = (b"XCLAIM",), True
        deliveries, failures = _read_until_quiet(alive, rounds=1)
        assert proxy.dropped == 1 and failures == 1 and deliveries == []
        ids = [p["message_id"] for p in redis_client.xpending_range(STREAM, "ingest", "-", "+", 10)]
        redis_client.xclaim(STREAM, "ingest", "other", 0, ids)  # another live consumer took them meanwhile
        deliveries, failures = _read_until_quiet(alive, rounds=3)
        assert failures == 0 and deliveries == []
        owners = {p["consumer"] for p in redis_client.xpending_range(STREAM, "ingest", "-", "+", 10)}
        assert owners == {b"other"}


def test_a_claim_over_two_streams_failing_on_the_second_loses_nothing_of_the_first(redis_client):
    other = "fleet.other"
    for stream in (STREAM, other):
        RedisStreamSink(redis_client).send(stream, [stream.encode() + b"-1", stream.encode() + b"-2"])
    settings = RedisSettings(block_ms=50, claim_every_s=0.1, claim_min_idle_ms=200)
    dead = RedisStreamSource(redis_client, [STREAM, other], "ingest", "dead", "fleet.events.dlq", settings)
    assert sum(len(d) for d in read_all(dead)) == 4
    time.sleep(0.3)
    with _through_proxy(redis_client) as (proxy, client):
        alive = RedisStreamSource(client, [STREAM, other], "ingest", "alive", "fleet.events.dlq", settings)
        alive.read(10_000, 0.05)
        time.sleep(0.15)
        # the first stream's entries are claimed (and answered), then the second stream's XPENDING fails
        proxy.armed = (b"XPENDING", other.encode())
        deliveries, failures = _read_until_quiet(alive, rounds=12)
        assert proxy.dropped == 1 and failures == 1
        got = sorted(p for d in deliveries for p in d.payloads)
        assert got == sorted([b"fleet.events-1", b"fleet.events-2", b"fleet.other-1", b"fleet.other-2"])
        alive.ack(deliveries)
        assert alive.lag().total == 0


def test_a_fresh_read_of_entries_already_handed_out_is_flagged_redelivered(redis_client):
    RedisStreamSink(redis_client).send(STREAM, [b"x", b"y"])
    source = make_source(redis_client)
    handed = read_all(source)
    assert [d.redelivered for d in handed] == [False]
    # A server restarted without its last writes forgets it handed these out: ">" gives them again.
    redis_client.xgroup_setid(STREAM, "ingest", "0")
    redis_client.xgroup_delconsumer(STREAM, "ingest", "c1")
    again = read_all(source)
    assert [p for d in again for p in d.payloads] == [b"x", b"y"]
    assert all(d.redelivered for d in again)


def test_a_server_that_lost_its_data_gets_the_group_again_and_reading_goes_on(redis_client):
    RedisStreamSink(redis_client).send(STREAM, [b"before"])
    source = make_source(redis_client)
    assert [p for d in read_all(source) for p in d.payloads] == [b"before"]
    redis_client.flushall()  # what a restart without the append-only file looks like
    RedisStreamSink(redis_client).send(STREAM, [b"after-1", b"after-2"])
    deliveries = []
    for _ in range(5):
        try:
            deliveries.extend(source.read(10_000, 0.05))
        except redis.ResponseError as exc:  # before the fix: NOGROUP on every read, for ever
            raise AssertionError(f"read failed: {exc}") from exc
    assert [p for d in deliveries for p in d.payloads] == [b"after-1", b"after-2"]
    source.ack(deliveries)
    assert source.lag().total == 0


def test_a_group_deleted_over_a_full_stream_is_created_again_and_its_rereads_flagged_redelivered(redis_client):
    RedisStreamSink(redis_client).send(STREAM, [b"old-1", b"old-2"])
    source = make_source(redis_client)
    first = read_all(source)
    source.ack(first)
    redis_client.xgroup_destroy(STREAM, "ingest")  # by hand: the stream still holds what was stored
    RedisStreamSink(redis_client).send(STREAM, [b"new"])
    deliveries = read_all(source)
    flagged = {p: d.redelivered for d in deliveries for p in d.payloads}
    assert flagged == {b"old-1": True, b"old-2": True, b"new": True}  # all were in the stream at recreation
    RedisStreamSink(redis_client).send(STREAM, [b"newer"])
    assert [(p, d.redelivered) for d in read_all(source) for p in d.payloads] == [(b"newer", False)]
