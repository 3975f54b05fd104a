"""The Redis Streams transport against a real Redis-protocol server."""

from __future__ import annotations

import time

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
