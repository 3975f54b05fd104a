"""Fleet simulator: deterministic shop traffic, fleet logs and metrics, injectable anomalies.

Public API (see ``docs/simulator.md``)::

    config = SimulationConfig(seed=1, start_ms=parse_start("2026-11-22T10:00:00Z"), count=10_000)
    for event in Simulator(config).events(): ...
    summary = run_simulation(config, open_sink("mq", Settings()), labels_path="labels.jsonl")
    payloads = generate_payloads(100_000, events_per_message=100)
"""

from fleetlens.simulate.config import SimulationConfig, parse_start
from fleetlens.simulate.generator import Simulator, format_ts
from fleetlens.simulate.runner import SimulationSummary, encode_lines, encode_messages, generate_payloads, run_simulation, write_labels
from fleetlens.simulate.scenarios import SCENARIOS, ScenarioSpec
from fleetlens.simulate.sinks import FileSink, ListSink, open_sink, stdout_sink

__all__ = [
    "SCENARIOS", "FileSink", "ListSink", "ScenarioSpec", "SimulationConfig", "SimulationSummary",
    "Simulator", "encode_lines", "encode_messages", "format_ts", "generate_payloads", "open_sink", "parse_start", "run_simulation",
    "stdout_sink", "write_labels",
]
