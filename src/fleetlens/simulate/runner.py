"""Running a simulation into a sink: NDJSON batching, pacing, labels file, summary."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import orjson

from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.generator import Simulator
from fleetlens.sources.base import Sink

Progress = Callable[[int, int], None]  # (events so far, simulated ms since start)


@dataclass
class SimulationSummary:
    """What a run produced."""

    events: int = 0
    messages: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_operation: dict[str, int] = field(default_factory=dict)
    start_ms: int = 0
    last_event_ms: int | None = None
    wall_seconds: float = 0.0
    scenarios: list[str] = field(default_factory=list)  # label ids written to the labels file
    skipped_scenarios: list[str] = field(default_factory=list)  # asked for, but after the run's end
    stream: str = ""
    interrupted: bool = False

    @property
    def events_per_second(self) -> float:
        """Wall-clock throughput of the run."""
        return self.events / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON output)."""
        return {**asdict(self), "events_per_second": round(self.events_per_second, 1)}


_SEP = b'},{"event_id":'
_NL_SEP = b'}\n{"event_id":'


def encode_lines(events: Sequence[dict[str, Any]]) -> list[bytes]:
    """One compact JSON object per event, each starting with ``event_id`` (as every simulated event does).

    One ``orjson.dumps`` of the whole list is ~2x cheaper than one call per event; the array is cut
    at ``},{"event_id":``, which cannot occur inside a JSON string (its quotes would be escaped).
    """
    if not events:
        return []
    return orjson.dumps(events)[1:-1].replace(_SEP, _NL_SEP).split(b"\n")  # orjson never writes a raw newline


def encode_messages(events: Sequence[dict[str, Any]], events_per_message: int) -> list[bytes]:
    """MQ payloads: one JSON object each, or NDJSON batches of ``events_per_message`` (the last may be short)."""
    lines = encode_lines(events)
    if events_per_message == 1:
        return lines
    join = b"\n".join
    return [join(lines[i : i + events_per_message]) for i in range(0, len(lines), events_per_message)]


def message_keys(events: Sequence[dict[str, Any]], events_per_message: int) -> list[str]:
    """The contract's message key of each payload: its first event's ``action_id``, else its ``host``."""
    return [e.get("action_id") or e.get("host") or "" for e in events[::events_per_message]]


def run_simulation(config: SimulationConfig, sink: Sink, stream: str = "fleet.events", labels_path: Path | str | None = None,
                   realtime: bool = False, progress: Progress | None = None,
                   stop: threading.Event | None = None,
                   on_start: Callable[[Simulator], None] | None = None) -> SimulationSummary:
    """Simulate ``config`` into ``sink`` (which is not closed here) and write the labels file.

    ``realtime`` paces sending so event time advances with the wall clock (from ``config.start_ms``);
    otherwise events go out as fast as they are made. Setting ``stop`` (or Ctrl-C in the main
    thread) ends the run early: what was made so far is sent, counted and labelled.
    """
    sim = Simulator(config)
    if on_start is not None:  # e.g. fleetlens up keeps it to inject scenarios into the running simulation
        on_start(sim)
    n_per = config.events_per_message
    wants_keys = getattr(sink, "wants_keys", False)
    summary = SimulationSummary(start_ms=config.start_ms, stream=stream)
    # realtime: ~10 sends per simulated second; fast: big batches
    max_batch = max(n_per, int(config.rate / 10) // n_per * n_per) if realtime else max(n_per, 8192 // n_per * n_per)
    wall0 = time.monotonic()
    carry: list[dict[str, Any]] = []

    def send(events: list[dict[str, Any]]) -> None:
        payloads = encode_messages(events, n_per)
        sink.send(stream, payloads, message_keys(events, n_per) if wants_keys else None)
        summary.messages += len(payloads)

    try:
        for batch in sim.batches(max_batch):
            if carry:
                batch = carry + batch
            whole = len(batch) - len(batch) % n_per
            carry = batch[whole:]
            if realtime and sim.last_ms is not None:
                delay = wall0 + (sim.last_ms - config.start_ms) / 1000 - time.monotonic()
                if delay > 0 and stop is not None:
                    stop.wait(delay)
                elif delay > 0:
                    time.sleep(delay)
            if whole:
                send(batch[:whole])
            if progress is not None:
                progress(sim.emitted, (sim.last_ms or config.start_ms) - config.start_ms)
            if stop is not None and stop.is_set():
                summary.interrupted = True
                break
    except KeyboardInterrupt:  # an open-ended realtime run ends with Ctrl-C: still send, count and label
        summary.interrupted = True
    if carry:
        send(carry)
    summary.wall_seconds = time.monotonic() - wall0
    summary.events = sim.emitted  # with an interrupt: the events of the batches handed out
    summary.by_kind = dict(sim.counts)
    summary.by_operation = dict(sorted(sim.operations.items()))
    summary.last_event_ms = sim.last_ms
    labels = sim.labels()
    summary.scenarios = [lab["id"] for lab in labels]
    summary.skipped_scenarios = sim.skipped_scenarios()
    if labels_path is not None:
        write_labels(labels_path, labels)
    return summary


def write_labels(path: Path | str, labels: Iterable[dict[str, Any]]) -> None:
    """The labels file: one JSON object per injected anomaly."""
    with open(path, "wb") as f:
        for label in labels:
            f.write(orjson.dumps(label, option=orjson.OPT_APPEND_NEWLINE))


def generate_payloads(count: int, events_per_message: int = 100, seed: int = 42, start_ms: int = 1_790_000_000_000,
                      **options: Any) -> list[bytes]:
    """``count`` events encoded as MQ payloads, no MQ involved (for ingest benchmarks and tests).

    ``options`` are further ``SimulationConfig`` fields (rate, users, scenarios, ...).
    """
    config = SimulationConfig(seed=seed, start_ms=start_ms, count=count, events_per_message=events_per_message, **options)
    events = [e for batch in Simulator(config).batches(65536) for e in batch]
    return encode_messages(events, events_per_message)
