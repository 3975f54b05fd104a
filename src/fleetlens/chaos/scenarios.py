"""The fault scenarios: each breaks one thing mid-stream and checks the store ends up exact.

Every scenario returns a ``Result`` with exact counts: events produced, rows stored, distinct
event ids (lost = produced − distinct, duplicated = rows − distinct) and the scenario's own
figures. Roles run as processes (``roles.RoleProcess``) except in the store outage, where the
failure has to be switched inside the process that holds the embedded store.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fleetlens.chaos import storefault
from fleetlens.chaos.cgroup import CpuLimit
from fleetlens.chaos.rig import START_MS, STREAM, Rig
from fleetlens.chaos.roles import ROLES, Counts, Role, RoleProcess, count_in_subprocess
from fleetlens.logsetup import get_logger
from fleetlens.simulate.runner import SimulationSummary, generate_payloads
from fleetlens.simulate.scenarios import SCENARIOS

log = get_logger(__name__)


@dataclass
class Result:
    """Outcome of one scenario: passed when nothing was lost or duplicated and the scenario's checks held."""

    scenario: str
    produced: int
    stored_rows: int
    distinct: int
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Produced events not in the store."""
        return self.produced - self.distinct

    @property
    def duplicated(self) -> int:
        """Rows stored more than once."""
        return self.stored_rows - self.distinct

    @property
    def passed(self) -> bool:
        """Nothing lost, nothing duplicated, every check held."""
        return self.lost == 0 and self.duplicated == 0 and not self.failures

    def summary(self) -> str:
        """One line for people and for docs/reliability.md."""
        extra = ", ".join(f"{k} {v}" for k, v in self.figures.items())
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.failures or ["counts"])
        return (f"{self.scenario}: produced {self.produced:,}, stored {self.stored_rows:,} rows, {self.distinct:,} distinct, "
                f"lost {self.lost}, duplicated {self.duplicated}; {extra} — {verdict}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON output)."""
        return {"scenario": self.scenario, "produced": self.produced, "stored_rows": self.stored_rows,
                "distinct": self.distinct, "lost": self.lost, "duplicated": self.duplicated, "passed": self.passed,
                "figures": self.figures, "failures": self.failures}


def wait_until(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll ``condition`` until true or ``timeout_s`` passed; returns whether it became true."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


def _finish(rig: Rig, spec: Role, name: str, summary: SimulationSummary, figures: dict[str, Any],
            failures: list[str]) -> Result:
    counts: Counts = count_in_subprocess(spec, rig.data_dir)
    return Result(name, spec.expected(summary), counts.rows, counts.distinct, figures, failures)


# -- SIGKILL at random points ------------------------------------------------------------------------


def sigkill_cycles(rig: Rig, spec: Role, cycles: int = 20, events: int = 600_000, seed: int = 11,
                   events_per_message: int = 20, max_delay_s: float | None = None, rng_seed: int = 5,
                   progress: Callable[[str], None] | None = None) -> Result:
    """Produce ``events``; start the role, SIGKILL it at a random moment after it acknowledged something, ``cycles`` times; then drain.

    A kill only counts when part of the stream was still unacknowledged (a kill after the end
    proves nothing); the result fails when fewer than ``cycles`` such kills happened.
    """
    if spec.history_days:  # its own default delay: a batch run's steps take longer than a micro-batch
        delay = {"max_delay_s": max_delay_s} if max_delay_s is not None else {}
        return batch_sigkill_cycles(rig, spec, cycles, events, seed, events_per_message, rng_seed=rng_seed,
                                    progress=progress, **delay)
    max_delay_s = 0.4 if max_delay_s is None else max_delay_s
    summary = rig.produce(events, seed, events_per_message, scenarios=spec.traffic)
    rng = random.Random(rng_seed)
    logs = rig.work_dir / f"{spec.name}-sigkill.log"
    kills, failures = 0, []
    progress_at_kill: list[int] = []
    while kills < cycles:
        before = max(0, rig.acknowledged(spec.group))
        proc = RoleProcess(spec, rig.env(), log_path=logs)
        started = wait_until(lambda: not proc.alive() or rig.acknowledged(spec.group) > before, 120, 0.02)
        time.sleep(rng.uniform(0.0, max_delay_s))
        if not proc.alive():
            failures.append(f"{spec.name} exited by itself (code {proc.wait(1)}): {proc.log_tail(500)}")
            break
        proc.sigkill()
        done = rig.acknowledged(spec.group)
        if not started or done >= summary.messages:
            break  # nothing left to interrupt
        kills += 1
        progress_at_kill.append(done)
        if progress:
            progress(f"SIGKILL {kills}/{cycles}: {done:,} of {summary.messages:,} messages acknowledged")
    if kills < cycles and not failures:
        failures.append(f"only {kills} of {cycles} kills hit mid-stream (produce more events)")
    final = RoleProcess(spec, rig.env(), drain=True, log_path=logs)
    code = final.wait(900)
    if code != 0:
        failures.append(f"final drain exited {code}: {final.log_tail(1000)}")
    acked = rig.acknowledged(spec.group)
    if acked != summary.messages:
        failures.append(f"{acked} of {summary.messages} messages acknowledged")
    figures = {"SIGKILLs mid-stream": kills, "messages": summary.messages, "acknowledged": acked}
    if spec.reference_env is not None:
        return _finish_against_reference(rig, spec, f"{spec.name}: {cycles} SIGKILL cycles", figures, failures)
    return _finish(rig, spec, f"{spec.name}: {cycles} SIGKILL cycles", summary, figures, failures)


METRICS_EVERY_S = 900.0  # history for a batch role: sparse metrics, or they outnumber the events 10:1


def batch_sigkill_cycles(rig: Rig, spec: Role, cycles: int = 20, events: int = 800_000, seed: int = 11,
                         events_per_message: int = 20, max_delay_s: float = 0.5, rng_seed: int = 5,
                         progress: Callable[[str], None] | None = None) -> Result:
    """A batch role (the archiver) over ``spec.history_days`` days of stored traffic, SIGKILLed mid-run ``cycles`` times; then a clean run.

    The traffic (about ``events`` events spread over the past days, plus one metric sample per
    source every ``METRICS_EVERY_S``) goes through ingest into the store first. Each cycle starts
    the role, waits for its next step line, sleeps a random 0–``max_delay_s`` and SIGKILLs it; a
    kill counts when the run had not finished. Then a clean run must exit 0, and every produced row
    must be in the store or the archive exactly once.
    """
    today = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start_ms = int((today - dt.timedelta(days=spec.history_days)).timestamp() * 1000)
    span_s = (time.time() * 1000 - start_ms) / 1000 - 600  # up to 10 minutes ago
    summary = rig.produce(events, seed, events_per_message, start_ms=start_ms, event_rate=events / span_s,
                          count=None, duration_s=span_s, metrics_interval_s=METRICS_EVERY_S)
    loader = RoleProcess(ROLES["ingest"], rig.env(), drain=True, log_path=rig.work_dir / "ingest-load.log")
    if loader.wait(1800) != 0:
        raise RuntimeError(f"loading the history through ingest failed: {loader.log_tail(1000)}")
    if progress:
        progress(f"{summary.events:,} events and samples over {spec.history_days} days stored")
    rng = random.Random(rng_seed)
    logs = rig.work_dir / f"{spec.name}-sigkill.log"
    kills, failures = 0, []
    while kills < cycles:
        lines_before = _progress_lines(logs)
        proc = RoleProcess(spec, rig.env(), log_path=logs)
        wait_until(lambda: not proc.alive() or _progress_lines(logs) > lines_before, 300, 0.02)
        time.sleep(rng.uniform(0.0, max_delay_s))
        if not proc.alive():
            code = proc.wait(1)
            if code != 0:
                failures.append(f"{spec.name} exited {code} by itself: {proc.log_tail(500)}")
            break  # the work is done: nothing left to interrupt
        proc.sigkill()
        kills += 1
        if progress:
            progress(f"SIGKILL {kills}/{cycles}: {_manifests(rig)} day manifests written")
    if kills < cycles and not failures:
        failures.append(f"only {kills} of {cycles} kills hit a running {spec.name} (give it more days or rows)")
    final = RoleProcess(spec, rig.env(), drain=True, log_path=logs)
    code = final.wait(1800)
    if code != 0:
        failures.append(f"final clean run exited {code}: {final.log_tail(1000)}")
    figures = {"SIGKILLs mid-run": kills, "days of history": spec.history_days,
               "day manifests after the clean run": _manifests(rig)}
    return _finish(rig, spec, f"{spec.name}: {cycles} SIGKILL cycles", summary, figures, failures)


def _progress_lines(log_path: Path) -> int:
    """Step lines (``  <table> <day> <step> …``) a batch role printed to its log so far."""
    if not log_path.exists():
        return 0
    return len(re.findall(rb"(?m)^  \w+ \d{4}-\d\d-\d\d \w", log_path.read_bytes()))


def _manifests(rig: Rig) -> int:
    """Day manifests in the rig's local archive."""
    return sum(1 for _ in (rig.data_dir / "archive").glob("table=*/date=*/_manifest.json"))


def _finish_against_reference(rig: Rig, spec: Role, name: str, figures: dict[str, Any], failures: list[str]) -> Result:
    """Compare the role's output with a clean run (no kills) of it on the same stream, in a data dir of its own.

    produced = the clean run's output, stored = the killed role's, distinct = both have it; so lost
    is what the clean run has and the killed one lacks, duplicated what the killed one has on top
    (for the detector: an alert raised again under another id). The injected scenarios' own
    alerts (``simulate.scenarios.SCENARIOS[...].expected_rules`` on the label's key) must be in
    both, once each.
    """
    ref_dir = rig.work_dir / "reference"
    ref = RoleProcess(spec, {**rig.env(), "FLEETLENS_DATA_DIR": str(ref_dir), **(spec.reference_env or {})}, drain=True,
                      log_path=rig.work_dir / f"{spec.name}-reference.log")
    code = ref.wait(900)
    if code != 0:
        failures.append(f"clean reference run exited {code}: {ref.log_tail(1000)}")
    killed, clean = count_in_subprocess(spec, rig.data_dir), count_in_subprocess(spec, ref_dir)
    got, want = set(killed.keys), set(clean.keys)
    if got - want:
        failures.append(f"not in the clean run: {sorted(got - want)[:10]}")
    if want - got:
        failures.append(f"missing: {sorted(want - got)[:10]}")
    expected = []
    if rig.labels_path.exists():
        for line in rig.labels_path.read_text().splitlines():
            label = json.loads(line)
            key = next(iter(label["key"].values()))
            expected += [f"{rule}|{key}" for rule in SCENARIOS[label["scenario"]].expected_rules]
    for keys, run in ((killed.keys, "killed"), (clean.keys, "clean")):
        once = [e for e in expected if sum(k.startswith(e + "|") for k in keys) == 1]
        if len(once) != len(expected):
            failures.append(f"{run} run: scenario alerts stored once: {len(once)} of {len(expected)} ({expected})")
    figures |= {"clean run's output": len(want), "scenario outputs (each once in both)": len(expected)}
    return Result(name, len(want), killed.rows, len(got & want), figures, failures)


# -- the MQ broken mid-stream ---------------------------------------------------------------------------


def redis_restart(rig: Rig, down_s: float) -> dict[str, Any]:
    """SIGKILL the Redis-protocol server, keep it down ``down_s``, start it again on the same port and data."""
    assert rig.redis is not None
    rig.redis.kill()
    time.sleep(down_s)
    started = time.monotonic()
    rig.redis.start()
    return {"Redis down (s)": down_s, "restart to ready (s)": round(time.monotonic() - started, 1)}


def kafka_restart(rig: Rig, down_s: float) -> dict[str, Any]:
    """SIGKILL the (single) Kafka broker, keep it down ``down_s``, start it again."""
    rig.kafka.kill()  # type: ignore[union-attr]
    time.sleep(down_s)
    started = time.monotonic()
    rig.kafka.start()  # type: ignore[union-attr]  # same ports and data; waits until it serves metadata
    return {"broker down (s)": down_s, "restart to ready (s)": round(time.monotonic() - started, 1)}


def kafka_leader_down(rig: Rig, down_s: float | None = None) -> dict[str, Any]:
    """SIGKILL the cluster node leading partition 0 of the event topic; it stays down (or returns after ``down_s``)."""
    from confluent_kafka.admin import AdminClient

    meta = AdminClient({"bootstrap.servers": rig.bootstrap}).list_topics(STREAM, timeout=10)
    leader = meta.topics[STREAM].partitions[0].leader
    node = next(n for n in rig.kafka.nodes if n.node_id == leader)  # type: ignore[union-attr]
    node.kill()
    figures: dict[str, Any] = {"brokers": len(rig.kafka.nodes), "killed node": leader}  # type: ignore[union-attr]
    if down_s is not None:
        time.sleep(down_s)
        node.start()
        figures["node down (s)"] = down_s
    return figures


def mq_fault(rig: Rig, spec: Role, name: str, fault: Callable[[], dict[str, Any]], events: int = 200_000,
             rate: float = 20_000, seed: int = 21, events_per_message: int = 20, at_fraction: float = 0.3,
             drain_timeout_s: float = 300, progress: Callable[[str], None] | None = None) -> Result:
    """The role consumes a paced stream; ``fault`` breaks the MQ once ``at_fraction`` of it is acknowledged.

    Then the producer finishes (riding out the outage), the role must catch up by itself, and the
    store must hold exactly the produced events. ``progress`` gets a line per phase and every
    10 s while catching up: during the outage the clients' only output is "connection refused".
    A role judged against a clean run (the detector) gets its scenario traffic written up front
    (its scenarios sit at fixed seconds of event time) and drains it as a backlog through the
    fault; its alerts must then equal the clean run's.
    """
    say = progress or (lambda line: None)
    logs = rig.work_dir / f"{spec.name}-{name.replace(' ', '-')}.log"
    backlog = rig.produce(events, seed, events_per_message, scenarios=spec.traffic) if spec.traffic else None
    proc = RoleProcess(spec, rig.env(), log_path=logs)
    failures: list[str] = []
    try:
        production = None if backlog else rig.produce_in_background(events, seed, rate, events_per_message)
        expected_messages = -(-events // events_per_message)
        wait_until(lambda: rig.acknowledged(spec.group) >= expected_messages * at_fraction or not proc.alive(), 300, 0.05)
        acked_at_fault = rig.acknowledged(spec.group)
        started = time.monotonic()
        say(f"{name}: fault at {acked_at_fault:,} of {expected_messages:,} messages acknowledged")
        figures = fault()
        say(f"MQ back {time.monotonic() - started:.1f} s after the fault ({figures}); producer finishing")
        summary = production.join(600) if production else backlog
        say(f"producer done {time.monotonic() - started:.1f} s after the fault: {summary.messages:,} messages")
        last_said = [time.monotonic()]

        def caught_up() -> bool:
            acked = rig.acknowledged(spec.group)
            if time.monotonic() - last_said[0] >= 10:
                last_said[0] = time.monotonic()
                say(f"  {acked:,} of {summary.messages:,} acknowledged")
            return acked >= summary.messages or not proc.alive()

        if not wait_until(caught_up, drain_timeout_s, 0.2):
            failures.append(f"not caught up after {drain_timeout_s}s: {rig.acknowledged(spec.group)} of {summary.messages}")
        recovered_s = time.monotonic() - started
        if not proc.alive():
            failures.append(f"{spec.name} died: {proc.log_tail(1500)}")
    finally:
        code = proc.stop()
    if code != 0:
        failures.append(f"{spec.name} exited {code} on SIGTERM: {proc.log_tail(1000)}")
    figures |= {"acknowledged when broken": f"{acked_at_fault:,} of {summary.messages:,} messages",
                "fault start to all acknowledged (s)": round(recovered_s, 1)}
    if spec.reference_env is not None:
        return _finish_against_reference(rig, spec, f"{spec.name}: {name}", figures, failures)
    return _finish(rig, spec, f"{spec.name}: {name}", summary, figures, failures)


# -- the store refusing inserts --------------------------------------------------------------------------


def store_outage(rig: Rig, outage_s: float = 60.0, rate: float = 10_000, seed: int = 31, events_per_message: int = 20,
                 tail_s: float = 20.0, progress: Callable[[str], None] | None = None) -> Result:
    """Inserts fail (TOO_MANY_PARTS, ``storefault``) for ``outage_s`` while traffic keeps coming; ingest in this process.

    Checked all along, every 0.25 s: the events of the acknowledged messages are in the store
    (nothing acknowledged that was not stored), and during the outage nothing more is acknowledged.
    """
    from fleetlens.ingest.run import build_worker
    from fleetlens.store.client import open_store

    settings = rig.settings()
    store = open_store(settings)
    worker = build_worker(settings.model_copy(update={"ingest": settings.ingest.model_copy(
        update={"consumer": "chaos", "batch_rows": 3000, "batch_seconds": 0.2})}), store)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="chaos-ingest", daemon=True)
    thread.start()
    events = int(rate * (outage_s + tail_s))  # traffic goes on during and after the outage
    failures: list[str] = []
    violations = 0
    acked_in_outage: list[int] = []

    def stored() -> int:
        return sum(int(store.query_scalar(f"SELECT count() FROM {t}")) for t in storefault.TABLES)

    def check(in_outage: bool) -> None:
        nonlocal violations
        acked = rig.acknowledged(worker.settings.group)
        rows = stored()
        if acked * events_per_message > rows + events_per_message:
            violations += 1
        if in_outage:
            acked_in_outage.append(acked)

    try:
        production = rig.produce_in_background(events, seed, rate, events_per_message)
        wait_until(lambda: worker.stats.stored > 0, 120)
        time.sleep(2)
        storefault.fail_inserts(store)
        retries_before = worker.stats.retries
        if progress:
            progress(f"store refusing inserts for {outage_s:.0f}s")
        started = time.monotonic()
        while time.monotonic() - started < outage_s:
            check(in_outage=True)
            time.sleep(0.25)
        rows_at_heal = stored()
        storefault.heal(store)
        retries = worker.stats.retries - retries_before
        summary = production.join(600)
        if not wait_until(lambda: (check(False), rig.acknowledged(worker.settings.group))[1] >= summary.messages
                          or worker.error is not None, 300, 0.25):
            failures.append("ingest did not catch up after the outage")
        healed_s = time.monotonic() - started - outage_s
    finally:
        stop.set()
        thread.join(120)
        worker.source.close()
    if worker.error is not None:
        failures.append(f"worker failed: {worker.error!r}")
    # The batch being stored when the fault began may still finish; after 2 s nothing more may be acknowledged.
    settled = acked_in_outage[8:]
    if settled and settled[-1] != settled[0]:
        failures.append(f"acknowledged during the outage: {settled[0]} -> {settled[-1]} messages")
    if violations:
        failures.append(f"{violations} samples with more events acknowledged than stored")
    if retries == 0:
        failures.append("the store never refused an insert")
    rows = sum(int(store.query_scalar(f"SELECT count() FROM {t}")) for t in storefault.TABLES)
    distinct = sum(int(store.query_scalar(f"SELECT uniqExact(event_id) FROM {t}")) for t in storefault.TABLES)
    store.close()
    figures = {"outage (s)": outage_s, "failed insert attempts retried": retries,
               "rows when healed": rows_at_heal, "acknowledged during outage": f"{settled[0] if settled else 0:,} → "
               f"{settled[-1] if settled else 0:,} messages", "ack-before-store violations": violations,
               "caught up after heal (s)": round(healed_s, 1)}
    return Result(f"ingest: store refusing inserts for {outage_s:.0f} s", summary.events, rows, distinct, figures, failures)


def detector_store_outage(rig: Rig, outage_s: float = 60.0, events: int = 400_000, seed: int = 37,
                          events_per_message: int = 20, progress: Callable[[str], None] | None = None) -> Result:
    """The alerts table refuses inserts (TOO_MANY_PARTS) for ``outage_s`` while alerts are due; detector in this process.

    The detect role's traffic is sent up to 62.5 % of its messages (the first scenario's alerts
    stored: the table holds a part), then the alerts table fails and the rest is sent. Checked:
    the detector stays up, acknowledges nothing past the micro-batch waiting for the store and
    stores nothing meanwhile; once healed it catches up by itself, and its alerts equal a clean
    run's on the same stream (``_finish_against_reference``).
    """
    from fleetlens.detect.runner import Detector
    from fleetlens.simulate.config import SimulationConfig
    from fleetlens.simulate.runner import run_simulation
    from fleetlens.simulate.scenarios import ScenarioSpec
    from fleetlens.store.client import open_store
    from fleetlens.store.migrations import ensure_schema

    spec = ROLES["detect"]
    settings = rig.settings()
    settings = settings.model_copy(update={"detect": settings.detect.model_copy(
        update={"consumer": "chaos", "batch_events": 4000, "batch_ms": 50, "alerts_stream": None})})
    store = open_store(settings)
    ensure_schema(store)
    detector = Detector(settings, store)
    stop = threading.Event()
    thread = threading.Thread(target=detector.run, args=(stop,), name="chaos-detect", daemon=True)
    thread.start()
    group = settings.detect.group
    failures: list[str] = []
    figures: dict[str, Any] = {"outage (s)": outage_s}

    def alerts() -> int:
        return int(store.query_scalar("SELECT uniqExact(id) FROM alerts"))

    def outage() -> None:  # called by the sink before the first message past the gate
        if not wait_until(lambda: rig.acknowledged(group) >= gate and alerts() > 0, 300, 0.2):
            failures.append("the first scenario's alerts were not stored before the outage")
        storefault.fail_inserts(store, ("alerts",))
        figures["alerts stored before"] = alerts()  # distinct ids
        if progress:
            progress(f"alerts table refusing inserts for {outage_s:.0f}s")

    total_messages = -(-events // events_per_message)
    gate = total_messages * 5 // 8
    config = SimulationConfig(seed=seed, events_per_message=events_per_message, users=300, start_ms=START_MS,
                              rate=2000.0, count=events, scenarios=tuple(ScenarioSpec.parse(x) for x in spec.traffic[:3]))
    sink = _GatedSink(rig.sink(), gate, outage)
    try:
        summary = run_simulation(config, sink, stream=STREAM, labels_path=rig.labels_path)
        started = time.monotonic()
        acked, stored = [], []
        while time.monotonic() - started < outage_s:
            acked.append(rig.acknowledged(group))
            stored.append(alerts())
            time.sleep(0.5)
        storefault.heal(store, ("alerts",))
        healed = time.monotonic()
        if not wait_until(lambda: rig.acknowledged(group) >= summary.messages or not thread.is_alive(), 300, 0.2):
            failures.append("the detector did not catch up after the outage")
        figures["caught up after heal (s)"] = round(time.monotonic() - healed, 1)
    finally:
        sink.inner.close()
        alive = thread.is_alive()
        stop.set()
        thread.join(60)
        store.close()
    if not alive or detector.error is not None:
        failures.append(f"the detector stopped: {detector.error!r}")
    settled = acked[4:]  # the micro-batches in flight when the fault began may still finish
    if settled and settled[-1] != settled[0]:
        failures.append(f"acknowledged during the outage: {settled[0]} -> {settled[-1]} messages")
    if settled and settled[-1] >= summary.messages:
        failures.append("everything was acknowledged during the outage: no alert was due in it")
    if len(set(stored)) > 1:
        failures.append(f"alerts stored during the outage: {stored[0]} -> {stored[-1]}")
    figures["acknowledged during outage"] = f"{settled[0] if settled else 0:,} → {settled[-1] if settled else 0:,} of {summary.messages:,} messages"
    return _finish_against_reference(rig, spec, f"detect: alerts table refusing inserts for {outage_s:.0f} s", figures, failures)


class _GatedSink:
    """Passes messages to ``inner``; calls ``at_gate()`` once, before the first message past the ``gate``-th."""

    def __init__(self, inner, gate: int, at_gate: Callable[[], None]):
        self.inner = inner
        self.gate = gate
        self.at_gate: Callable[[], None] | None = at_gate
        self.sent = 0
        self.wants_keys = getattr(inner, "wants_keys", False)

    def send(self, stream: str, payloads, keys=None) -> None:
        """Send, pausing at the gate."""
        if self.at_gate is not None and self.sent + len(payloads) > self.gate:
            head = self.gate - self.sent
            self.inner.send(stream, payloads[:head], keys[:head] if keys else None)
            self.sent += head
            payloads, keys = payloads[head:], keys[head:] if keys else None
            at_gate, self.at_gate = self.at_gate, None
            at_gate()
        self.inner.send(stream, payloads, keys)
        self.sent += len(payloads)


# -- overload ------------------------------------------------------------------------------------------------


def overload(rig: Rig, spec: Role, seconds: float = 60.0, factor: float = 2.0, cpus: float = 0.25,
             calibration_events: int = 100_000, seed: int = 41, events_per_message: int = 20,
             memory_bound_mb: float | None = None, progress: Callable[[str], None] | None = None) -> Result:
    """Producers at ``factor`` × the sustainable rate for ``seconds``: memory stays bounded, lag grows, then drains.

    The role runs under a CPU limit of ``cpus`` (``cgroup``). Its sustainable rate is measured
    first: how fast it drains a backlog of ``calibration_events`` under that limit. Then traffic is
    offered at ``factor`` times that rate; the role's resident memory is sampled every 0.2 s and its
    peak taken from the kernel's high-water mark (VmHWM, read until it exits); it must stay under ``memory_bound_mb``
    (default: the role's configured ``ingest.memory_bound_mb``).
    """
    from fleetlens.settings import IngestSettings

    bound = memory_bound_mb or float(IngestSettings().memory_bound_mb)
    limit = CpuLimit(cpus)
    logs = rig.work_dir / f"{spec.name}-overload.log"
    failures: list[str] = []
    try:
        # 1. sustainable rate: drain a backlog under the CPU limit
        calib = rig.produce(calibration_events, seed, events_per_message)
        proc = RoleProcess(spec, rig.env(), log_path=logs)
        limit.add(proc.pid)
        wait_until(lambda: rig.acknowledged(spec.group) > 0 or not proc.alive(), 300)
        first, t0 = rig.acknowledged(spec.group), time.monotonic()
        wait_until(lambda: rig.acknowledged(spec.group) >= calib.messages or not proc.alive(), 600, 0.1)
        sustainable = (calib.messages - first) * events_per_message / max(time.monotonic() - t0, 1e-3)
        if progress:
            progress(f"sustainable rate under {cpus} CPU: {sustainable:,.0f} events/s")
        # 2. overload: offered at factor × that for `seconds`, same process
        offered_rate = factor * sustainable
        # Made before the clock starts: generating on the fly could not offer twice what ingest takes.
        payloads = generate_payloads(int(offered_rate * seconds), events_per_message, seed + 1, START_MS, users=300)
        production = rig.send_paced(payloads, events_per_message, offered_rate)
        peak_sampled, max_lag, lag_at_end = 0.0, 0, 0
        while production.thread.is_alive():
            peak_sampled = max(peak_sampled, proc.rss_mb())
            acked = rig.acknowledged(spec.group)
            written = _stream_length(rig)
            if acked >= 0 and written >= 0:
                max_lag = max(max_lag, written - acked)
            time.sleep(0.2)
        summary = production.join()
        produced_s = summary.wall_seconds
        total = calib.messages + summary.messages
        lag_at_end = total - rig.acknowledged(spec.group)
        drain_started = time.monotonic()
        while proc.alive() and rig.acknowledged(spec.group) < total and time.monotonic() - drain_started < 1200:
            peak_sampled = max(peak_sampled, proc.rss_mb())
            time.sleep(0.2)
        drained_s = time.monotonic() - drain_started
        if rig.acknowledged(spec.group) < total:
            failures.append(f"lag did not drain: {rig.acknowledged(spec.group)} of {total} messages")
        if not proc.alive():
            failures.append(f"{spec.name} died: {proc.log_tail(1500)}")
        code = proc.stop()
        if code != 0:
            failures.append(f"{spec.name} exited {code} on SIGTERM")
    finally:
        limited = limit.active
        limit.close()
    if proc.peak_rss_mb > bound:
        failures.append(f"peak RSS {proc.peak_rss_mb:.0f} MB over the bound {bound:.0f} MB")
    if max_lag <= 0:
        failures.append("the lag never grew: not an overload")
    figures = {
        "CPU limit": f"{cpus} CPU" if limited else f"none (cgroups not writable; asked {cpus})",
        "sustainable (events/s)": round(sustainable),
        "offered (events/s)": round(summary.events / max(produced_s, 1e-3)),
        "offered for (s)": round(produced_s, 1),
        "max lag (messages)": max_lag, "lag when producers stopped (messages)": lag_at_end,
        "drained in (s)": round(drained_s, 1),
        "peak RSS (MB, kernel high-water mark)": round(proc.peak_rss_mb), "peak RSS sampled (MB)": round(peak_sampled),
        "memory bound (MB)": round(bound),
    }
    merged = SimulationSummary(events=calib.events + summary.events, messages=total)
    return _finish(rig, spec, f"{spec.name}: overload ×{factor:g} for {seconds:.0f} s", merged, figures, failures)


def _stream_length(rig: Rig) -> int:
    """Messages written to the event stream so far (Redis: entries added; Kafka: sum of high watermarks)."""
    try:
        if rig.mq == "redis":
            from fleetlens.sources.redis import connect

            client = connect(rig.redis.url, socket_timeout=5)  # type: ignore[union-attr]
            try:
                return int(client.xinfo_stream(STREAM)["entries-added"])
            finally:
                client.close()
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": rig.bootstrap, "group.id": "chaos-watch", "log_level": 0})
        try:
            parts = consumer.list_topics(STREAM, timeout=5).topics[STREAM].partitions
            return sum(consumer.get_watermark_offsets(TopicPartition(STREAM, p), timeout=5)[1] for p in parts)
        finally:
            consumer.close()
    except Exception:  # noqa: BLE001 - unknown right now
        return -1


def run_dir(base: Path | None, name: str) -> Path:
    """A fresh work directory for one scenario."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=f"fleetlens-chaos-{name}-", dir=base))
    return path
