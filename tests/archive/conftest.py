"""Fixtures of the archive tests: a real S3-protocol server (moto_server) on loopback, and simulated data
spanning several days older than the retention, in a fresh embedded store per test."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from fleetlens.contract.decode import decode_payloads
from fleetlens.settings import Settings
from fleetlens.simulate.runner import generate_payloads
from fleetlens.sources.child_process import ChildProcess

UTC = dt.timezone.utc
TODAY = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
# The data: 18:00 of the day 40 days ago until ~3.3 days later (days D0..D3), all older than 30 days.
D0 = (TODAY - dt.timedelta(days=40)).date()
START_MS = int((TODAY - dt.timedelta(days=40, hours=-18)).timestamp() * 1000)
RATE = 0.5  # events per simulated second: ~45k logs and business events and ~25k metrics over 3.25 days
DURATION_S = 3.25 * 86400
DAYS = [D0 + dt.timedelta(days=i) for i in range(4)]
# retention that makes D2 the first hot day: D0 and D1 are archived, D2 and D3 stay hot
RETENTION_KEEPING_D2 = (TODAY.date() - DAYS[2]).days
S3_ENV = {"AWS_ACCESS_KEY_ID": "fleetlens-test", "AWS_SECRET_ACCESS_KEY": "fleetlens-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer(ChildProcess):
    """``moto_server`` (PyPI moto[server]): a real S3-protocol HTTP server, in memory, on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> MotoServer:
        """Start it and wait until it answers."""
        exe = Path(sys.executable).with_name("moto_server")
        self.process = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("moto_server exited at start")
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("moto_server did not answer")


@pytest.fixture(scope="session")
def moto():
    """A moto S3 server for the session (stopped at the end)."""
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto, monkeypatch):
    """A fresh bucket on the moto server (boto3 creates it); the AWS variables set for this process."""
    import boto3

    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    name = f"archive-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=name)
    return name


def s3_settings(tmp_path: Path, moto: MotoServer, bucket: str) -> Settings:
    """Settings of a store under tmp_path archiving to ``bucket`` on the moto server."""
    return Settings(data_dir=tmp_path / "data", archive={"target": "s3", "endpoint": moto.url, "bucket": bucket,
                                                          "prefix": "fleet/archive", "catalog_ttl_s": 0})


def s3_env(settings: Settings) -> dict[str, str]:
    """Environment for a ``fleetlens`` child process with these settings (plus the AWS variables)."""
    a = settings.archive
    return {**os.environ, **S3_ENV, "FLEETLENS_DATA_DIR": str(settings.data_dir), "FLEETLENS_ARCHIVE__TARGET": a.target,
            "FLEETLENS_ARCHIVE__ENDPOINT": a.endpoint or "", "FLEETLENS_ARCHIVE__BUCKET": a.bucket,
            "FLEETLENS_ARCHIVE__PREFIX": a.prefix}


REJECTIONS = pa.table({
    "received_at": pa.array([START_MS + 3_600_000 * 9 * i for i in range(8)], pa.timestamp("ms", "UTC")),
    "stream": ["fleet.events"] * 8,
    "partition": pa.array([0] * 8, pa.int32()),
    "position": [f"1-{i}" for i in range(8)],
    "line": pa.array([0] * 8, pa.int32()),
    "event_id": [f"x{i}" for i in range(8)],
    "field": ["level", "ts", "payload", "level", "ts", "level", "payload", "ts"],
    "reason": ["level: 'loud' is not one of debug, info, warn, error", "ts: not a time", "not JSON"] * 2 + ["not JSON", "ts: not a time"],
    "raw": pa.array([b"{}"] * 8, pa.binary()),
})


@pytest.fixture(scope="session")
def decoded():
    """The simulated data decoded to Arrow (events, metrics), once per session."""
    out = decode_payloads(generate_payloads(10**7, events_per_message=100, seed=7, start_ms=START_MS, rate=RATE,
                                          users=200, metrics_interval_s=600, duration_s=DURATION_S))
    assert not out.rejections
    return out


def load(store, decoded) -> None:
    """Insert the simulated data and the rejections into ``store``."""
    store.insert_arrow("events", decoded.events)
    store.insert_arrow("metrics", decoded.metrics)
    store.insert_arrow("rejections", REJECTIONS)


def json_rows(table: pa.Table) -> bytes:
    """A canonical byte form of a table (exact comparison, floats included)."""
    return orjson.dumps(table.to_pylist(), option=orjson.OPT_SORT_KEYS, default=str)
