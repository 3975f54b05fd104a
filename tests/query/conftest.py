"""One simulated dataset, loaded into a temporary embedded store, shared by the query and API tests.

The reference answers come from the simulator's own events (``ref``: a Polars frame of the decoded
NDJSON lines), never from fleetlens SQL.
"""

from __future__ import annotations

import datetime as dt

import orjson
import polars as pl
import pyarrow as pa
import pytest

from fleetlens.contract.decode import decode_payloads
from fleetlens.query.common import Limits, from_ms
from fleetlens.simulate.runner import generate_payloads
from fleetlens.simulate.scenarios import ScenarioSpec
from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema

START_MS = 1_795_000_000_000  # 2026-11-18T11:06:40Z
RATE = 25.0  # events per simulated second
DURATION_S = 3 * 3600
EVENTS = int(RATE * DURATION_S)
SCENARIOS = (
    ScenarioSpec.parse("provider_outage@1800+1800"),
    ScenarioSpec.parse("error_spike:payment@4000+600"),
    ScenarioSpec.parse("latency_regression:buy@6000+1200"),
    ScenarioSpec.parse("buy_refund_abuse@7000+1800"),
)
ALERTS = pa.table({
    "id": ["a1", "a2", "a3"],
    "rule": ["payment_failures_same_provider", "error_rate_spike", "error_rate_spike"],
    "key": ["provider-1", "payment", "cart"],
    "severity": ["critical", "warning", "warning"],
    "ts_start": pa.array([START_MS + 1_800_000, START_MS + 4_000_000, START_MS + 9_000_000], pa.timestamp("ms", "UTC")),
    "ts_end": pa.array([START_MS + 3_600_000, START_MS + 4_600_000, START_MS + 9_100_000], pa.timestamp("ms", "UTC")),
    "status": ["resolved", "firing", "firing"],
    "evidence": ['{"failures": 12}', '{"error_rate": 0.8}', '{"error_rate": 0.3}'],
})


@pytest.fixture(scope="package")
def dataset(tmp_path_factory):
    """(payloads, reference frame of every simulated log/business event, metrics frame)."""
    payloads = generate_payloads(EVENTS, events_per_message=100, seed=11, start_ms=START_MS, rate=RATE, users=300,
                                 scenarios=SCENARIOS)
    events = [orjson.loads(line) for p in payloads for line in p.split(b"\n")]
    ref = pl.DataFrame([e for e in events if e["kind"] != "metric"], infer_schema_length=None)
    ref = ref.with_columns(pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC").dt.cast_time_unit("ms"))
    metrics = pl.DataFrame([e for e in events if e["kind"] == "metric"], infer_schema_length=None)
    metrics = metrics.with_columns(pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC").dt.cast_time_unit("ms"))
    return payloads, ref, metrics


@pytest.fixture(scope="package")
def loaded(dataset, tmp_path_factory):
    """An embedded store holding the dataset, a few alerts and rejections (closed at the end)."""
    payloads, _, _ = dataset
    store = EmbeddedStore(tmp_path_factory.mktemp("qstore") / "chdb", "fleetlens", query_timeout_s=30)
    ensure_schema(store)
    decoded = decode_payloads(payloads)
    assert not decoded.rejections
    store.insert_arrow("events", decoded.events)
    store.insert_arrow("metrics", decoded.metrics)
    store.insert_arrow("alerts", ALERTS)
    store.insert_arrow("rejections", REJECTIONS)
    yield store
    store.close()


REJECTIONS = pa.table({
    "received_at": pa.array([START_MS + 60_000 * i for i in range(5)], pa.timestamp("ms", "UTC")),
    "stream": ["fleet.events"] * 5,
    "partition": pa.array([0] * 5, pa.int32()),
    "position": [f"1-{i}" for i in range(5)],
    "line": pa.array([0] * 5, pa.int32()),
    "event_id": ["x1", "x2", "", "x4", "x5"],
    "field": ["level", "level", "payload", "ts", "level"],
    "reason": ["level: 'loud' is not one of debug, info, warn, error"] * 2 + ["not JSON", "ts: not a time", "level: missing"],
    "raw": pa.array([b"{}"] * 5, pa.binary()),
})

WHOLE = {"start": from_ms(START_MS), "end": from_ms(START_MS + DURATION_S * 1000 + 60_000)}
LIMITS = Limits(timeout_s=30, max_rows=10_000, max_buckets=20_000)


@pytest.fixture
def whole():
    """Start/end covering the dataset."""
    return dict(WHOLE)


def ms(value: dt.datetime) -> int:
    """Epoch ms of an aware datetime."""
    return int(value.timestamp() * 1000)
