"""The ingest worker killed with SIGKILL mid-batch, again and again: the store ends up exact."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.runner import run_simulation
from fleetlens.sources.redis import RedisStreamSink

STREAM = "fleet.events"


def ingest_process(tmp_path, redis_url: str, *extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "FLEETLENS_DATA_DIR": str(tmp_path / "data"),
        "FLEETLENS_REDIS__URL": redis_url,
        "FLEETLENS_REDIS__BLOCK_MS": "50",
        "FLEETLENS_INGEST__CONSUMER": "crashy",
        "FLEETLENS_INGEST__BATCH_ROWS": "3000",
        "FLEETLENS_INGEST__BATCH_SECONDS": "0.2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "fleetlens", "--log-level", "warning", "ingest", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def acknowledged(client) -> int:
    """Entries the ingest group has acknowledged so far."""
    (info,) = client.xinfo_groups(STREAM)
    return int(info["entries-read"] or 0) - int(info["pending"])


@pytest.mark.slow
def test_sigkill_mid_batch_loses_and_duplicates_nothing(tmp_path, redis_server, redis_client):
    config = SimulationConfig(seed=11, start_ms=1_795_000_000_000, count=300_000, events_per_message=20, users=300)
    summary = run_simulation(config, RedisStreamSink(redis_client), stream=STREAM)
    messages = summary.messages
    rng = random.Random(5)
    kills = 0  # kills while part of the stream was still unacknowledged
    for _ in range(8):
        before = acknowledged(redis_client) if redis_client.exists(STREAM) and redis_client.xinfo_groups(STREAM) else 0
        proc = ingest_process(tmp_path, redis_server.url)
        # Wait until this run has stored something, then kill it at a random moment mid-stream.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if redis_client.xinfo_groups(STREAM) and acknowledged(redis_client) > before:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.4))
        if proc.poll() is not None:
            pytest.fail(f"ingest exited early: {proc.stdout.read().decode()[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = acknowledged(redis_client)
        print(f"SIGKILL: {done} of {messages} messages acknowledged")
        if done >= messages:
            break
        kills += 1
        if kills == 4:
            break
    assert kills >= 3, "the worker must have been killed mid-stream several times"

    final = ingest_process(tmp_path, redis_server.url, "--until-idle", "2")
    out, _ = final.communicate(timeout=300)
    assert final.returncode == 0, out.decode()[-3000:]

    from fleetlens.store.client import EmbeddedStore

    store = EmbeddedStore(tmp_path / "data" / "chdb", "fleetlens")
    try:
        rows = int(store.query_scalar("SELECT count() FROM events")) + int(store.query_scalar("SELECT count() FROM metrics"))
        distinct = int(store.query_scalar("SELECT uniqExact(event_id) FROM events")) + int(
            store.query_scalar("SELECT uniqExact(event_id) FROM metrics")
        )
    finally:
        store.close()
    assert distinct == summary.events, "events lost"
    assert rows == summary.events, "events stored twice"
    (info,) = redis_client.xinfo_groups(STREAM)
    assert int(info["pending"]) == 0 and int(info["lag"]) == 0
