"""Shared data of the detector tests: simulated runs decoded through the real contract path."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fleetlens.alerts.manager import AlertManager
from fleetlens.alerts.model import Alert
from fleetlens.contract.decode import decode_payloads
from fleetlens.detect.config import RulesConfig
from fleetlens.detect.engine import Engine
from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.generator import Simulator
from fleetlens.simulate.runner import encode_messages
from fleetlens.simulate.scenarios import ScenarioSpec

START_MS = 1_790_000_000_000
RUN_S = 2400
RATE = 300
# Every scenario, spaced so the same rule's episodes never share a cooldown.
MIXED = ("provider_outage@300+120", "buy_refund_abuse@480+300", "identical_burst@900+60", "error_spike@1080+120",
         "latency_regression@1320+120", "cpu_saturation@1560+180", "traffic_drop@1800+120", "service_crash@2040+10")


@dataclass
class Run:
    """A simulated run: decoded events and metrics in time order, and its labels."""

    events: pa.Table
    metrics: pa.Table
    labels: list[dict]


def simulate_run(scenarios: tuple[str, ...], seed: int = 7, rate: float = RATE, duration_s: float = RUN_S,
                 start_ms: int = START_MS) -> Run:
    """Simulate, encode as 100-event messages and decode them as the detector would."""
    config = SimulationConfig(seed=seed, rate=rate, duration_s=duration_s, start_ms=start_ms,
                              scenarios=tuple(ScenarioSpec.parse(s) for s in scenarios))
    sim = Simulator(config)
    events = [e for batch in sim.batches() for e in batch]
    decoded = decode_payloads(encode_messages(events, 100))
    assert not decoded.rejections
    return Run(decoded.events, decoded.metrics, sim.labels())


def detect(chunks: list[tuple[pa.Table, pa.Table, str]], rules: RulesConfig | None = None) -> list[Alert]:
    """Run the chunks through the engine and the alert manager; every alert raised (latest state)."""
    engine = Engine(rules or RulesConfig())
    raised: dict[str, Alert] = {}

    class Collect:
        def send(self, alert: Alert, change: str) -> None:
            raised[alert.id] = alert

    manager = AlertManager([Collect()], int(engine.config.cooldown_s * 1000))
    for events, metrics, partition in chunks:
        manager.on_hits(engine.process_arrow(events, metrics, partition))
        manager.on_watermark(engine.watermarks.watermark())
    return list(raised.values())


def in_order_chunks(run: Run, seconds: float = 2.0) -> list[tuple[pa.Table, pa.Table, str]]:
    """The run cut into consecutive micro-batches of ``seconds`` of event time (one partition)."""
    chunks = []
    ets, mts = run.events["ts"], run.metrics["ts"]
    lo = pc.min(ets).value
    hi = pc.max(ets).value
    step = int(seconds * 1000)
    for start in range(lo - lo % step, hi + 1, step):
        a, b = pa.scalar(start, ets.type), pa.scalar(start + step, ets.type)
        ev = run.events.filter(pc.and_(pc.greater_equal(ets, a), pc.less(ets, b)))
        me = run.metrics.filter(pc.and_(pc.greater_equal(mts, a), pc.less(mts, b)))
        chunks.append((ev, me, "p0"))
    return chunks


@pytest.fixture(scope="session")
def mixed_run() -> Run:
    """A 40-minute run at 300 events/s with every scenario injected once."""
    return simulate_run(MIXED)


@pytest.fixture(scope="session")
def mixed_alerts(mixed_run) -> list[Alert]:
    """The alerts of the mixed run delivered in order."""
    return detect(in_order_chunks(mixed_run))


@pytest.fixture(scope="session")
def clean_run() -> Run:
    """The same length and traffic with no anomaly."""
    return simulate_run((), seed=8)


class Alertmanager:
    """A real Prometheus Alertmanager (built from the Go module proxy by scripts/install-alertmanager.sh) on a free port."""

    def __init__(self, workdir):
        import subprocess
        from pathlib import Path

        from fleetlens.sources.redis_server import free_port

        root = Path(__file__).resolve().parents[2]
        binary = subprocess.run([str(root / "scripts" / "install-alertmanager.sh")], capture_output=True, text=True,
                                timeout=1200, check=True).stdout.strip().splitlines()[-1]
        config = workdir / "alertmanager.yml"
        config.write_text("route:\n  receiver: none\n  group_wait: 0s\nreceivers:\n  - name: none\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={workdir / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, timeout_s: float = 30.0) -> "Alertmanager":
        import time

        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("alertmanager did not become ready")

    def alerts(self) -> list[dict]:
        """The alerts it holds as active."""
        import httpx

        return httpx.get(self.url + "/api/v2/alerts", timeout=5).json()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory):
    """A real Alertmanager for the session."""
    am = Alertmanager(tmp_path_factory.mktemp("alertmanager")).wait_ready()
    yield am
    am.stop()
