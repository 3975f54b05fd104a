"""The ``fleetlens`` command: one subcommand per role, each a thin call into its package.

Every command reads the same settings (``docs/settings.md``): ``--config FILE`` (TOML), then
``FLEETLENS_*`` environment variables, then the flags given here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fleetlens.logsetup import configure_logging
from fleetlens.memory import use_arrow_memory_pool
from fleetlens.settings import Settings, active_settings, load_settings, set_active
from fleetlens.detect.cli import detect, reprocess
from fleetlens.simulate.cli import simulate
from fleetlens.workload.cli import load

app = typer.Typer(
    help="fleetlens: logs, metrics and business events of a microservice fleet → answers, alerts, dashboards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks of the hot paths (results go to docs/benchmarks.md).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

from fleetlens.query.cli import query_app  # noqa: E402 - beside the other sub-apps

app.add_typer(query_app, name="query")

from fleetlens.archive.cli import archive_app  # noqa: E402

app.add_typer(archive_app, name="archive")

from fleetlens.demo.cli import scenario_app  # noqa: E402

app.add_typer(scenario_app, name="scenario")

from fleetlens.api.token_cli import token_app  # noqa: E402

app.add_typer(token_app, name="token")

from fleetlens.chaos.cli import chaos_app  # noqa: E402

app.add_typer(chaos_app, name="chaos")


@app.callback()
def main(
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", envvar="FLEETLENS_CONFIG", help="TOML settings file (see docs/settings.md)."
    ),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where the embedded store and Redis keep data."),
    log_level: Optional[str] = typer.Option(None, "--log-level", help="debug, info, warning or error."),
    log_json: bool = typer.Option(False, "--log-json", help="Log JSON lines instead of readable lines."),
) -> None:
    """Settings shared by every command."""
    overrides: dict[str, object] = {"data_dir": data_dir, "log_level": log_level}
    if log_json:
        overrides["log_format"] = "json"
    try:
        settings = load_settings(config, **overrides)
    except Exception as exc:  # noqa: BLE001 - shown to the user as a one-line error
        raise typer.BadParameter(str(exc)) from exc
    configure_logging(settings.log_level, settings.log_format)
    use_arrow_memory_pool(settings.arrow_memory_pool)
    set_active(settings)


def current_settings() -> Settings:
    """The settings the top-level options produced."""
    return active_settings()


def with_mq(settings: Settings, mq: Optional[str], kafka_bootstrap: Optional[str]) -> Settings:
    """``settings`` with the MQ (and Kafka bootstrap servers) a command's flags chose."""
    update: dict[str, object] = {}
    if mq is not None:
        if mq not in ("redis", "kafka"):
            raise typer.BadParameter(f"--mq must be redis or kafka, not {mq!r}")
        update["mq"] = mq
    if kafka_bootstrap:
        update["kafka"] = settings.kafka.model_copy(update={"bootstrap": kafka_bootstrap})
    return settings.model_copy(update=update) if update else settings


app.command("simulate")(simulate)
app.command("detect")(detect)
app.command("reprocess")(reprocess)
app.command("load")(load)


@app.command()
def up(
    rate: float = typer.Option(None, "--rate", help="Simulated events per second (default: settings.simulate.rate)."),
    users: int = typer.Option(None, "--users", help="Simulated users (default: settings.simulate.users)."),
    events_per_message: int = typer.Option(
        None, "--events-per-message", help="Events per MQ message (default: settings.simulate.events_per_message)."
    ),
    simulator: bool = typer.Option(True, "--simulate/--no-simulate", help="Feed the pipeline with the simulator."),
    duration: Optional[float] = typer.Option(
        None, "--duration", help="Stop by itself after this many seconds (default: run until Ctrl-C)."
    ),
    api: bool = typer.Option(True, "--api/--no-api", help="Serve the query API (settings.query.host/port) in this process."),
    detector: bool = typer.Option(True, "--detect/--no-detect", help="Run the streaming detector (alerts) in this process."),
    mq: Optional[str] = typer.Option(
        None, "--mq", help="redis (default: an embedded Redis-protocol server) or kafka (an existing broker)."
    ),
    kafka_bootstrap: Optional[str] = typer.Option(
        None, "--kafka-bootstrap", help="Kafka bootstrap servers host:port (default: settings.kafka.bootstrap)."
    ),
    data_dir: Optional[Path] = typer.Option(
        None, "--data-dir", help="Where the embedded store and Redis keep data (the same as `fleetlens --data-dir`)."
    ),
) -> None:
    """Run the embedded stack: Redis-protocol server (or an existing Kafka), simulator, ingest, detector, chDB hot store, API and dashboard."""
    from fleetlens.up import UpOptions, run_up

    settings = with_mq(current_settings(), mq, kafka_bootstrap)
    if data_dir is not None:  # `./scripts/run.sh --data-dir DIR` passes it here, after `up`
        settings = settings.model_copy(update={"data_dir": data_dir})
        set_active(settings)
    sim = settings.simulate
    options = UpOptions(
        rate=rate if rate is not None else sim.rate,
        users=users if users is not None else sim.users,
        events_per_message=events_per_message if events_per_message is not None else sim.events_per_message,
        simulate=simulator,
        duration_s=duration,
        api=api,
        detect=detector,
    )
    run_up(settings, options)


@app.command()
def ingest(
    until_idle: Optional[float] = typer.Option(
        None, "--until-idle", help="Exit once no new message arrived for this many seconds and the group has none left to deliver (default: run until stopped)."
    ),
) -> None:
    """Run one ingest worker: MQ → decode → hot store, acknowledging only what is stored."""
    from fleetlens.ingest.run import run_ingest
    from fleetlens.store.client import open_store

    settings = current_settings()
    store = open_store(settings)
    try:
        run_ingest(settings, store, until_idle_s=until_idle)
    finally:
        store.close()


@app.command()
def api(
    host: Optional[str] = typer.Option(None, "--host", help="Listen address (default settings.query.host)."),
    port: Optional[int] = typer.Option(None, "--port", help="Listen port (default settings.query.port)."),
) -> None:
    """Serve the query API (OpenAPI at /docs) over the store, in this process, until Ctrl-C."""
    from fleetlens.api.run import run_api

    run_api(current_settings(), host=host, port=port)


@app.command()
def status(
    strict: bool = typer.Option(
        False, "--strict", help="Exit with status 1 when the store, a shard replica or the MQ cannot be read, or a Kafka partition is under-replicated."
    ),
) -> None:
    """What the store holds (events, metrics, rejections) and how far each consumer group is behind."""
    from fleetlens.status import print_status

    if not print_status(current_settings()) and strict:
        raise typer.Exit(1)


@bench_app.command("ingest")
def bench_ingest(
    events: int = typer.Option(1_000_000, "--events", help="Events in the batched case."),
    single_messages: int = typer.Option(
        1_000_000, "--single-messages", help="Messages (= events) in the 1-event-per-message case (several "
        "ingest batches, so reading, decoding and storing overlap as they do in steady state)."
    ),
    batch: int = typer.Option(100, "--batch", help="Events per NDJSON message in the batched case."),
    rounds: int = typer.Option(3, "--rounds", help="Rounds per case; medians are reported."),
    mq: str = typer.Option("redis", "--mq", help="redis or kafka: the MQ to measure (a fresh server is started)."),
    compare_arrow: bool = typer.Option(
        True, "--compare-arrow/--no-compare-arrow",
        help="Also ingest each round with the decoder's Arrow fast path (the comparison point of the native one).",
    ),
) -> None:
    """End-to-end events/s MQ → store (1 event per message and NDJSON batches) beside a raw consume + acknowledge loop."""
    from fleetlens.bench.ingest import print_ingest_bench

    settings = with_mq(current_settings(), mq, None)
    print_ingest_bench(settings, events=events, single_messages=single_messages, batch=batch, rounds=rounds, mq=mq,
                       compare_arrow=compare_arrow)


@bench_app.command("queries")
def bench_queries(
    store_dir: Path = typer.Option(..., "--store-dir", help="Data directory of a large store (seed one with "
                                   "`python -m fleetlens.workload.seed DIR 20000000 2000`); the run adds its events to it."),
    ingest_rate: float = typer.Option(100_000, "--ingest-rate", help="Events/s ingest writes (a pre-filled backlog read at this cap)."),
    phase: float = typer.Option(60.0, "--phase", help="Seconds of ingest alone, then seconds of ingest with queries."),
    load_rate: float = typer.Option(4.0, "--load-rate", help="Requests/s of `fleetlens load`, all clients together."),
    clients: int = typer.Option(2, "--clients", help="Concurrent clients of `fleetlens load`."),
    mix: Optional[str] = typer.Option(None, "--mix", help="family=weight,… as `fleetlens load --mix` (default: its mix)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Also write the results as JSON to this file."),
) -> None:
    """Query latency per family while ingest writes at a set rate into a large store, and ingest's rate with and without the queries."""
    from fleetlens.bench.queries import print_queries_bench

    try:
        print_queries_bench(current_settings(), store_dir, ingest_rate, phase, load_rate, clients, mix, output)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@bench_app.command("query-cost")
def bench_query_cost(
    store_dir: Path = typer.Option(..., "--store-dir", help="Data directory of a large store (seed one with `python -m fleetlens.workload.seed DIR 20000000 2000`); only read (merges are paused during the run)."),
    requests: int = typer.Option(20, "--requests", min=1, help="Measured requests per family (after two warm-up requests)."),
    mix: Optional[str] = typer.Option(None, "--mix", help="family=weight,… as `fleetlens load --mix` (default: its mix); the weights weigh the mix's CPU."),
    output: Optional[Path] = typer.Option(None, "--output", help="Also write the results as JSON to this file."),
) -> None:
    """CPU and time of each query family, one request at a time, on a quiet store."""
    from fleetlens.bench.query_cost import print_query_cost

    try:
        print_query_cost(current_settings(), store_dir, mix, requests, output)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@bench_app.command("decode")
def bench_decode(
    events: int = typer.Option(200_000, "--events", help="Events to decode."),
    batch: int = typer.Option(100, "--batch", help="Events per NDJSON message."),
) -> None:
    """Contract decoding events/s (NDJSON batches and single events) beside orjson per line."""
    from fleetlens.bench.decode import print_decode_bench

    print_decode_bench(events=events, per_message=batch)


@bench_app.command("dashboard")
def bench_dashboard(
    events: int = typer.Option(5_000_000, "--events", help="Events the store must hold (seeded once, ending now, when it holds fewer)."),
    store_dir: Path = typer.Option(Path("fleetlens-bench-dashboard"), "--store-dir", help="Data directory of the benchmark store (reused across runs)."),
    rate: float = typer.Option(230.0, "--rate", help="Simulated events per second when seeding (5M at 230/s span six hours)."),
    ranges: str = typer.Option("1h,6h", "--ranges", help="Comma-separated preset ranges to load each page with (15m, 1h, 3h, 6h, 24h, 7d)."),
    runs: int = typer.Option(5, "--runs", help="Cold loads per page and range; the median and max are reported."),
    chromium: str = typer.Option("/usr/bin/chromium", "--chromium", help="Chromium executable (Debian's chromium)."),
    end: str = typer.Option("now", "--end", help="Where each range ends: now (the preset, live), or newest (the store's newest event: comparable runs on a store seeded earlier)."),
) -> None:
    """Dashboard page load in headless Chromium until every panel shows data, on a store of N events."""
    from fleetlens.bench.dashboard import print_dashboard_bench

    if end not in ("now", "newest"):
        raise typer.BadParameter("must be now or newest", param_hint="--end")
    print_dashboard_bench(current_settings(), store_dir, events, rate, [r.strip() for r in ranges.split(",") if r.strip()],
                          runs, chromium, end)


@bench_app.command("auth")
def bench_auth(
    requests: int = typer.Option(2000, "--requests", help="Sequential requests per HTTP case."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """What access control and metrics cost: token checks, the guard per request, per-batch metrics, /metrics."""
    from fleetlens.bench.auth import print_auth_bench

    print_auth_bench(requests, as_json)


@bench_app.command("detect")
def bench_detect(
    events: int = typer.Option(1_000_000, "--events", help="Simulated events for the pre-decoded engine run."),
    e2e_events: int = typer.Option(1_000_000, "--e2e-events", help="Events drained from Redis in the end-to-end run."),
    batch: int = typer.Option(50_000, "--batch", help="Events per micro-batch in the engine run."),
    rounds: int = typer.Option(3, "--rounds", help="Rounds per throughput figure; medians are reported."),
    samples: int = typer.Option(30, "--samples", help="Triggers per rule in the latency run."),
) -> None:
    """Detector throughput (one core on pre-decoded batches; end to end from the MQ) and alert latency p50/p99."""
    from fleetlens.bench.detect import print_detect_bench

    print_detect_bench(events, e2e_events, batch, rounds, samples)


@bench_app.command("store")
def bench_store(
    rows: int = typer.Option(1_000_000, "--rows", help="Rows to insert per engine."),
    batch: int = typer.Option(50_000, "--batch", help="Rows per insert."),
) -> None:
    """Store insert rates (MergeTree, ReplacingMergeTree, Null engine) and the dedup lookup cost."""
    from fleetlens.bench.store import print_store_bench

    print_store_bench(rows=rows, batch=batch)


@bench_app.command("archive")
def bench_archive(
    events: int = typer.Option(2_000_000, "--events", help="Simulated events over the days (they set the simulator rate); the rows actually archived are reported."),
    days: int = typer.Option(2, "--days", help="Days the events span (all older than the retention)."),
    repeat: int = typer.Option(5, "--repeat", help="Runs per query; medians are reported."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Archive throughput (rows/s, MB/s) and query latency of an archived day vs the same day hot."""
    from fleetlens.bench.archive import print_archive_bench

    print_archive_bench(events, days, repeat, as_json)


if __name__ == "__main__":
    app()
