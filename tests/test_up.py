"""`fleetlens up` runs the embedded stack, stops by itself, and stores exactly what it simulated."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import sys

import pytest

from fleetlens.sources.redis_server import free_port


def up_command(tmp_path, *args: str, data_dir_after_up: bool = False) -> list[str]:
    """The global ``--data-dir`` before ``up``, or ``up``'s own after it (what ``scripts/run.sh --data-dir`` passes)."""
    data_dir = ["--data-dir", str(tmp_path / "data")]
    before, after = ([], data_dir) if data_dir_after_up else (data_dir, [])
    return [sys.executable, "-m", "fleetlens", *before, "up", *after, "--rate", "4000", "--events-per-message", "20", *args]


def up_env(port: int) -> dict[str, str]:
    return {**os.environ, "FLEETLENS_REDIS__URL": f"redis://127.0.0.1:{port}/0"}


def run_up(tmp_path, port: int, seconds: int) -> str:
    proc = subprocess.run(
        up_command(tmp_path, "--duration", str(seconds)), env=up_env(port), capture_output=True, text=True, timeout=120
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


def interrupt_up(tmp_path, port: int, after_s: float) -> str:
    """Run `fleetlens up --data-dir …` until Ctrl-C (SIGINT) arrives after ``after_s`` seconds."""
    proc = subprocess.Popen(up_command(tmp_path, data_dir_after_up=True), env=up_env(port), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.mark.slow
def test_up_stores_everything_it_simulated_and_keeps_data_across_runs(tmp_path):
    """A timed run, then a run stopped with Ctrl-C: the store holds exactly what both simulated."""
    port = free_port()
    first = run_up(tmp_path, port, 4)
    stored, produced = (int(x.replace(",", "")) for x in re.search(
        r"stored ([\d,]+) events and samples.*the simulator produced ([\d,]+)", first, re.S).groups())
    assert produced > 4000 and stored == produced
    assert (tmp_path / "data" / "chdb").is_dir() and (tmp_path / "data" / "redis").is_dir()
    assert (tmp_path / "data" / "labels.jsonl").exists()
    from fleetlens.api.auth import TokenStore

    token = re.search(r"admin token.*: (flt_\S+)", first).group(1)  # the first start makes one and shows it once
    assert TokenStore(tmp_path / "data" / "tokens.json").verify(token) == "admin"

    second = interrupt_up(tmp_path, port, 6)
    assert "stopping" in second and "admin token" not in second and token not in second
    produced2 = int(re.search(r"the simulator produced ([\d,]+)", second).group(1).replace(",", ""))

    from fleetlens.store.client import EmbeddedStore

    store = EmbeddedStore(tmp_path / "data" / "chdb", "fleetlens")
    try:
        total = int(store.query_scalar("SELECT count() FROM events")) + int(store.query_scalar("SELECT count() FROM metrics"))
    finally:
        store.close()
    assert total == produced + produced2


@pytest.mark.slow
def test_up_against_kafka_stores_everything_and_stops(tmp_path, kafka_broker):
    """`up --mq kafka` runs against an existing broker (no embedded Redis) and stops cleanly."""
    proc = subprocess.run(
        up_command(tmp_path, "--mq", "kafka", "--kafka-bootstrap", kafka_broker.bootstrap, "--duration", "5"),
        env={**os.environ, "FLEETLENS_STREAMS": '["up.kafka.events"]', "FLEETLENS_DLQ_STREAM": "up.kafka.dlq"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    stored, produced = (int(x.replace(",", "")) for x in re.search(
        r"stored ([\d,]+) events and samples.*the simulator produced ([\d,]+)", out, re.S).groups())
    assert produced > 4000 and stored == produced
    assert not (tmp_path / "data" / "redis").exists()
