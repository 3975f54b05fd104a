"""Quick variants of the fault runs against real servers (the long ones: ``fleetlens chaos``, docs/reliability.md).

Each ends with exact counts: every produced event stored once, nothing lost, nothing duplicated.
"""

from __future__ import annotations

import pytest

from fleetlens.chaos import scenarios
from fleetlens.chaos.rig import Rig
from fleetlens.chaos.roles import role


@pytest.fixture
def redis_rig(tmp_path):
    rig = Rig.with_redis(tmp_path)
    yield rig
    rig.close()


def test_redis_server_killed_and_restarted_mid_stream(redis_rig):
    result = scenarios.mq_fault(redis_rig, role("ingest"), "Redis SIGKILLed and restarted",
                                lambda: scenarios.redis_restart(redis_rig, 3), events=40_000, rate=8_000)
    print(result.summary())
    assert result.passed, result.summary()
    assert result.produced == 40_000


def test_detector_through_a_redis_restart_raises_the_clean_runs_alerts(redis_rig):
    result = scenarios.mq_fault(redis_rig, role("detect"), "Redis SIGKILLed and restarted",
                                lambda: scenarios.redis_restart(redis_rig, 3), events=400_000)
    print(result.summary())
    assert result.passed, result.summary()
    assert result.produced >= 4  # the clean run's alerts: the scenarios' own, each once (checked in passed)


def test_store_refusing_inserts_acknowledges_nothing_unstored(redis_rig):
    result = scenarios.store_outage(redis_rig, outage_s=5, rate=4_000, tail_s=3)
    print(result.summary())
    assert result.passed, result.summary()
    assert result.figures["failed insert attempts retried"] > 0


def test_detector_waits_out_an_alerts_table_refusing_inserts(redis_rig):
    result = scenarios.detector_store_outage(redis_rig, outage_s=6)
    print(result.summary())
    assert result.passed, result.summary()
    assert result.figures["alerts stored before"] > 0 and result.produced > result.figures["alerts stored before"]


def test_overload_keeps_memory_bounded_and_the_lag_drains(redis_rig):
    result = scenarios.overload(redis_rig, role("ingest"), seconds=8, factor=2, cpus=0.25, calibration_events=30_000)
    print(result.summary())
    assert result.passed, result.summary()
    assert result.figures["max lag (messages)"] > 0


@pytest.mark.slow
def test_detector_through_a_kafka_broker_restart_raises_the_clean_runs_alerts(tmp_path):
    """Down longer than the session: partitions are lost and re-read from the last commit. Messages the
    detector evaluated before must not be counted again (they made extra identical-operation bursts)."""
    rig = Rig.with_kafka(tmp_path)
    try:
        result = scenarios.mq_fault(rig, role("detect"), "Kafka broker SIGKILLed and restarted",
                                    lambda: scenarios.kafka_restart(rig, 10), events=400_000)
    finally:
        rig.close()
    print(result.summary())
    assert result.passed, result.summary()


@pytest.mark.slow
def test_one_of_three_kafka_brokers_killed(tmp_path):
    rig = Rig.with_kafka(tmp_path, brokers=3)
    try:
        result = scenarios.mq_fault(rig, role("ingest"), "one of 3 brokers SIGKILLed",
                                    lambda: scenarios.kafka_leader_down(rig), events=40_000, rate=8_000)
    finally:
        rig.close()
    print(result.summary())
    assert result.passed, result.summary()


def test_a_server_whose_port_was_taken_while_down_refuses_to_restart(redis_rig):
    import socket

    server = redis_rig.redis
    server.kill()
    with socket.socket() as squatter:  # another run's server took the freed port
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        with pytest.raises(RuntimeError, match="taken by another process"):
            server.start()
    server.start()  # free again: back on its old port
    from fleetlens.sources.redis import connect

    assert connect(server.url).ping()
