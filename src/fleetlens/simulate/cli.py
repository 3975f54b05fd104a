"""``fleetlens simulate``: the fleet simulator on the command line (registered in ``fleetlens.cli``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleetlens.settings import active_settings
from fleetlens.simulate.config import SimulationConfig, parse_start
from fleetlens.simulate.runner import SimulationSummary, run_simulation
from fleetlens.simulate.scenarios import SCENARIOS, ScenarioSpec
from fleetlens.simulate.sinks import open_sink

_SCENARIO_HELP = ", ".join(SCENARIOS)


def simulate(
    output: Annotated[str, typer.Option("--output", "-o", help="Where messages go: 'mq' (the configured MQ; 'redis' is the same), a redis:// url, '-' for stdout, or an NDJSON file path.")] = "mq",
    count: Annotated[Optional[int], typer.Option(help="Stop after this many events.")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many simulated seconds.")] = None,
    rate: Annotated[Optional[float], typer.Option(help="Mean events per simulated second (event time). Default: settings simulate.rate.")] = None,
    realtime: Annotated[bool, typer.Option("--realtime/--fast", help="Pace sending by the wall clock, or write as fast as possible.")] = False,
    seed: Annotated[Optional[int], typer.Option(help="Random seed: same seed and options, same bytes. Default: settings simulate.seed.")] = None,
    start: Annotated[Optional[str], typer.Option(help="Simulated start time, RFC 3339 (2026-11-22T10:00:00Z) or epoch ms. Default: now, to the second.")] = None,
    users: Annotated[Optional[int], typer.Option(help="Number of shop users. Default: settings simulate.users.")] = None,
    services: Annotated[int, typer.Option(help="Number of services: 7 is the checkout path; fewer drops from its end, more adds supporting services.")] = 7,
    replicas: Annotated[int, typer.Option(help="Pods per service.")] = 2,
    hosts: Annotated[int, typer.Option(help="Hosts (Kubernetes nodes) the pods are spread over.")] = 4,
    providers: Annotated[int, typer.Option(help="Payment providers (1-4).")] = 4,
    events_per_message: Annotated[Optional[int], typer.Option(help="Events per MQ message: 1 (one JSON object) or N (NDJSON batch). Default: settings simulate.events_per_message.")] = None,
    metrics_interval: Annotated[float, typer.Option(help="Simulated seconds between metric samples of each pod and host.")] = 10.0,
    inject: Annotated[Optional[list[str]], typer.Option(help=f"Anomaly NAME[:TARGET][@START_S[+DURATION_S]], repeatable. Names: {_SCENARIO_HELP}.")] = None,
    labels: Annotated[Optional[Path], typer.Option(help="Write the injected anomalies' ground truth here (JSON lines).")] = None,
    stream: Annotated[Optional[str], typer.Option(help="Redis stream key. Default: the first of settings streams.")] = None,
    redis_url: Annotated[Optional[str], typer.Option(help="Redis server for --output mq. Default: settings redis.url.")] = None,
    run_id: Annotated[Optional[str], typer.Option(help="Prefix of event, action, order and session ids. Default: a hash of seed and start.")] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout (not with --output -).")] = False,
) -> None:
    """Simulate the shop's fleet: user traffic, service logs, host metrics, injected anomalies."""
    settings = active_settings()
    err = Console(stderr=True)
    if count is None and duration is None and not realtime:
        raise typer.BadParameter("give --count or --duration (or --realtime to run until Ctrl-C)")
    try:
        cfg = SimulationConfig.from_settings(
            settings, seed=seed, rate=rate, users=users, services=services, replicas=replicas, hosts=hosts,
            providers=providers, start_ms=parse_start(start), duration_s=duration, count=count,
            events_per_message=events_per_message, metrics_interval_s=metrics_interval, run_id=run_id,
            scenarios=tuple(ScenarioSpec.parse(s) for s in inject or ()),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    sink = open_sink(output, settings, redis_url)
    stream_key = stream or settings.streams[0]
    total = count if count is not None else None
    with Progress(TextColumn("[bold]simulate"), BarColumn(), TextColumn("{task.fields[events]:,} events, {task.fields[sim_s]:.0f} s simulated"),
                  TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("simulate", total=total or (duration * 1000 if duration else None), events=0, sim_s=0.0)

        def progress(events: int, sim_ms: int) -> None:
            bar.update(task, completed=events if total else sim_ms, events=events, sim_s=sim_ms / 1000)

        try:
            summary = run_simulation(cfg, sink, stream=stream_key, labels_path=labels, realtime=realtime, progress=progress)
        finally:
            sink.close()
    if json_summary and output not in ("-", "stdout"):
        sys.stdout.buffer.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_APPEND_NEWLINE))
    else:
        err.print(_summary_table(summary, output, labels))


def _summary_table(summary: SimulationSummary, output: str, labels: Path | None) -> Table:
    table = Table(title="simulation summary", show_header=False)
    table.add_row("events", f"{summary.events:,}" + (" (interrupted)" if summary.interrupted else ""))
    table.add_row("messages", f"{summary.messages:,} to {output}" + (f" stream {summary.stream}" if output in ("mq", "redis") or "://" in output else ""))
    table.add_row("by kind", ", ".join(f"{k} {v:,}" for k, v in summary.by_kind.items()))
    table.add_row("by operation", ", ".join(f"{k} {v:,}" for k, v in summary.by_operation.items()))
    table.add_row("throughput", f"{summary.events_per_second:,.0f} events/s in {summary.wall_seconds:.2f} s")
    if summary.scenarios or summary.skipped_scenarios:
        table.add_row("anomalies", ", ".join(summary.scenarios) + (f" -> {labels}" if labels else ""))
    if summary.skipped_scenarios:
        table.add_row("not reached", ", ".join(summary.skipped_scenarios))
    return table
