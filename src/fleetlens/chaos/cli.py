"""``fleetlens chaos …``: the fault, overload and hostile-input runs against real servers it starts itself.

Each command prints one result line with exact counts (and ``--json``); the exit code is 1 when
the run failed its checks. Results are recorded in docs/reliability.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer

chaos_app = typer.Typer(help="Break things on purpose (servers it starts itself) and check nothing is lost.",
                        no_args_is_help=True)

_WORK = typer.Option(None, "--work-dir", help="Where runs keep their servers' data (default: a temp dir).")
_JSON = typer.Option(False, "--json", help="Print the result as JSON too.")


def _report(result, as_json: bool) -> None:
    typer.echo(result.summary())
    if as_json:
        typer.echo(json.dumps(result.to_dict(), default=str))
    if not result.passed:
        raise typer.Exit(1)


def _role(name: str, consumers: tuple[str, ...] | None = ("ingest",)):
    """The registered role, as a usage error when unknown or not one of ``consumers`` (None: any role)."""
    from fleetlens.chaos.roles import role

    try:
        spec = role(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from None
    if consumers is not None and spec.name not in consumers:
        raise typer.BadParameter(f"{name!r} is not for this run; here: {', '.join(consumers)}", param_hint="--role")
    return spec


def _rig(work_dir: Optional[Path], name: str, mq: str = "redis", brokers: int = 1):
    from fleetlens.chaos.rig import Rig
    from fleetlens.chaos.scenarios import run_dir

    path = run_dir(work_dir, name)
    return Rig.with_redis(path) if mq == "redis" else Rig.with_kafka(path, brokers)


@chaos_app.command("sigkill")
def sigkill(
    role: str = typer.Option("ingest", "--role", help="The role to kill: ingest, detect (alerts compared with a clean run) or archive (a batch job over days of stored history)."),
    cycles: int = typer.Option(20, "--cycles", help="SIGKILLs while part of the stream is unacknowledged (archive: while the run is unfinished)."),
    events: int = typer.Option(800_000, "--events", help="Events produced before the first kill (archive: spread over its days of history)."),
    mq: str = typer.Option("redis", "--mq", help="redis or kafka."),
    max_delay: Optional[float] = typer.Option(
        None, "--max-delay", help="Kill up to this many seconds after the role's first progress (default: 0.4; archive: 0.5)."),
    work_dir: Optional[Path] = _WORK, as_json: bool = _JSON,
) -> None:
    """Start the role, SIGKILL it at a random moment after it made progress, again and again; then a clean run, and count."""
    from fleetlens.chaos.scenarios import sigkill_cycles

    delay = {"max_delay_s": max_delay} if max_delay is not None else {}
    spec = _role(role, consumers=None)
    with _rig(work_dir, "sigkill", mq) as rig:
        _report(sigkill_cycles(rig, spec, cycles=cycles, events=events, progress=typer.echo, **delay), as_json)


@chaos_app.command("mq-restart")
def mq_restart(
    mq: str = typer.Option("redis", "--mq", help="redis (the Redis-protocol server) or kafka (the single broker)."),
    down: float = typer.Option(10.0, "--down", help="Seconds the server stays dead."),
    events: int = typer.Option(300_000, "--events", help="Events produced while it happens."),
    rate: float = typer.Option(20_000.0, "--rate", help="Events per second offered."),
    role: str = typer.Option("ingest", "--role", help="The role consuming: ingest (events counted) or detect (alerts compared with a clean run)."),
    work_dir: Optional[Path] = _WORK, as_json: bool = _JSON,
) -> None:
    """SIGKILL the MQ server mid-stream, keep it down, restart it: the role must catch up by itself."""
    from fleetlens.chaos import scenarios

    spec = _role(role, ("ingest", "detect"))
    with _rig(work_dir, f"{mq}-restart", mq) as rig:
        fault = (lambda: scenarios.redis_restart(rig, down)) if mq == "redis" else (lambda: scenarios.kafka_restart(rig, down))
        name = "Redis-protocol server SIGKILLed and restarted" if mq == "redis" else "Kafka broker SIGKILLed and restarted"
        _report(scenarios.mq_fault(rig, spec, name, fault, events=events, rate=rate, progress=typer.echo), as_json)


@chaos_app.command("broker-down")
def broker_down(
    brokers: int = typer.Option(3, "--brokers", help="Cluster size (replication factor min(3, brokers), min.insync.replicas 2)."),
    events: int = typer.Option(300_000, "--events", help="Events produced while it happens."),
    rate: float = typer.Option(20_000.0, "--rate", help="Events per second offered."),
    role: str = typer.Option("ingest", "--role", help="The role consuming: ingest (events counted) or detect (alerts compared with a clean run)."),
    work_dir: Optional[Path] = _WORK, as_json: bool = _JSON,
) -> None:
    """In a Kafka cluster on loopback, SIGKILL the leader of partition 0 mid-stream; it stays down."""
    from fleetlens.chaos import scenarios

    spec = _role(role, ("ingest", "detect"))
    with _rig(work_dir, "broker-down", "kafka", brokers) as rig:
        _report(scenarios.mq_fault(rig, spec, f"one of {brokers} Kafka brokers SIGKILLed",
                                   lambda: scenarios.kafka_leader_down(rig), events=events, rate=rate,
                                   progress=typer.echo), as_json)


@chaos_app.command("store-outage")
def store_outage(
    seconds: float = typer.Option(60.0, "--seconds", help="How long the store refuses inserts."),
    rate: float = typer.Option(10_000.0, "--rate", help="Events per second offered meanwhile (ingest)."),
    role: str = typer.Option("ingest", "--role", help="ingest (events and metrics tables refuse) or detect (the alerts table refuses)."),
    work_dir: Optional[Path] = _WORK, as_json: bool = _JSON,
) -> None:
    """The store refuses every insert (ClickHouse TOO_MANY_PARTS) for a while: retries, nothing acknowledged unstored."""
    from fleetlens.chaos import scenarios

    if role not in ("ingest", "detect"):
        raise typer.BadParameter("ingest or detect", param_hint="--role")
    with _rig(work_dir, "store-outage") as rig:
        if role == "detect":
            _report(scenarios.detector_store_outage(rig, outage_s=seconds, progress=typer.echo), as_json)
        else:
            _report(scenarios.store_outage(rig, outage_s=seconds, rate=rate, progress=typer.echo), as_json)


@chaos_app.command("overload")
def overload(
    seconds: float = typer.Option(60.0, "--seconds", help="How long producers offer the overload."),
    factor: float = typer.Option(2.0, "--factor", help="Offered rate as a multiple of the sustainable rate."),
    cpus: float = typer.Option(0.25, "--cpus", help="CPU limit of the role process (cgroup), which sets its sustainable rate."),
    role: str = typer.Option("ingest", "--role", help="The role overloaded."),
    work_dir: Optional[Path] = _WORK, as_json: bool = _JSON,
) -> None:
    """Producers at FACTOR × the sustainable rate: peak RSS stays under the memory bound, lag grows, then drains."""
    from fleetlens.chaos.scenarios import overload as run

    spec = _role(role)
    with _rig(work_dir, "overload") as rig:
        _report(run(rig, spec, seconds=seconds, factor=factor, cpus=cpus, progress=typer.echo), as_json)


@chaos_app.command("hostile")
def hostile(
    count: int = typer.Option(100_000, "--count", help="Bad lines in the corpus (plus about half as many good events)."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same corpus."),
    work_dir: Optional[Path] = _WORK, as_json: bool = _JSON,
) -> None:
    """Push the hostile corpus through Redis into ingest: every bad line dead-lettered with a reason, every good event stored."""
    from fleetlens.chaos.hostile_run import run_hostile

    with _rig(work_dir, "hostile") as rig:
        _report(run_hostile(rig, count, seed), as_json)


@chaos_app.command("fuzz")
def fuzz(
    runs: int = typer.Option(100_000, "--runs", help="Executions (libFuzzer -runs)."),
    seconds: int = typer.Option(600, "--seconds", help="Stop after this many seconds at most (libFuzzer -max_total_time)."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Corpus directory (kept and grown; default: a temp dir with the seeds)."),
) -> None:
    """Coverage-guided fuzzing (atheris) of the decoder and the NDJSON splitter; prints executions and crashes."""
    typer.echo(json.dumps(run_fuzzer(runs, seconds, corpus)))


def run_fuzzer(runs: int, seconds: int, corpus: Optional[Path] = None, max_len: int = 8192) -> dict:
    """Run ``python -m fleetlens.chaos.fuzz`` in a child process; returns executions, crashes, seconds."""
    from fleetlens.chaos.fuzz_seeds import write_seeds

    corpus = corpus or Path(tempfile.mkdtemp(prefix="fleetlens-fuzz-"))
    seeds = write_seeds(corpus)
    crashes = corpus.parent / f"{corpus.name}-crashes"
    crashes.mkdir(exist_ok=True)
    started = time.monotonic()
    out = subprocess.run(
        # -rss_limit_mb: libFuzzer's 2 GB default was once hit 1.4 s into a run on a loaded machine by the
        # instrumented interpreter itself (the reported input decodes in a few MB); 4 GB still catches runaways
        [sys.executable, "-m", "fleetlens.chaos.fuzz", f"-runs={runs}", f"-max_total_time={seconds}", f"-max_len={max_len}",
         "-rss_limit_mb=4096", f"-artifact_prefix={crashes}/", str(corpus)],
        capture_output=True, text=True, timeout=seconds + 120,
    )
    text = out.stdout + out.stderr
    done = re.search(r"Done (\d+) runs", text)
    return {
        "executions": int(done.group(1)) if done else None,
        "crashes": len(list(crashes.iterdir())),
        "exit_code": out.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "seeds": seeds,
        "corpus": str(corpus),
        "tail": text[-1500:] if out.returncode else "",
    }
