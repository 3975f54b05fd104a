"""Fill a store with simulated events for query benchmarks, no MQ involved.

``python -m fleetlens.workload.seed DATA_DIR EVENTS RATE``: EVENTS simulated events at RATE events
per simulated second, ending now (so ``fleetlens load`` finds them in its last hour), with a provider
outage and an error spike; decoded and inserted in 200k-event chunks into ``DATA_DIR/chdb``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fleetlens.contract.decode import decode_payloads
from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.generator import Simulator
from fleetlens.simulate.runner import encode_messages
from fleetlens.simulate.scenarios import ScenarioSpec
from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema


def seed(data_dir: Path, events: int, rate: float, users: int = 2000) -> float:
    """Insert ``events`` simulated events ending now; returns the seconds it took."""
    start_ms = int(time.time() * 1000) - int(events / rate * 1000)
    config = SimulationConfig(seed=5, start_ms=start_ms, count=events, rate=rate, users=users,
                              scenarios=(ScenarioSpec.parse("provider_outage"), ScenarioSpec.parse("error_spike:payment")))
    store = EmbeddedStore(data_dir / "chdb", "fleetlens")
    t0 = time.monotonic()
    try:
        ensure_schema(store)
        for batch in Simulator(config).batches(200_000):
            decoded = decode_payloads(encode_messages(batch, 100))
            store.insert_arrow("events", decoded.events)
            store.insert_arrow("metrics", decoded.metrics)
    finally:
        store.close()
    return time.monotonic() - t0


if __name__ == "__main__":
    directory, count, per_s = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(f"{count:,} events in {seed(directory, count, per_s):.0f} s into {directory / 'chdb'}")
