"""``fleetlens load``: run a query mix against the API with a progress line; print a table, write JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import orjson
import typer


def read_token(token: str | None, token_file: Path | None) -> str | None:
    """The API token from ``--token``/``FLEETLENS_TOKEN`` or the first line of ``--token-file``."""
    if token:
        return token.strip()
    if token_file:
        try:
            return token_file.read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise typer.BadParameter(f"cannot read a token from {token_file}: {exc}", param_hint="--token-file") from None
    return None


def load(
    url: Optional[str] = typer.Option(None, "--url", help="API base URL (default http://settings.query.host:port)."),
    rate: float = typer.Option(20.0, "--rate", help="Requests per second, all clients together."),
    clients: int = typer.Option(4, "--clients", help="Concurrent clients (threads, one HTTP connection each)."),
    duration: float = typer.Option(30.0, "--duration", help="Seconds to run."),
    mix: str = typer.Option("", "--mix", help="family=weight,… over trace, events, search, users, business, perf, "
                            "resources, anomalies, rejections (default: every family, traces weighted most)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Also write the results as JSON to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
    token: Optional[str] = typer.Option(None, "--token", envvar="FLEETLENS_TOKEN", show_default=False,
                                        help="API token (prefer the FLEETLENS_TOKEN environment variable or --token-file: "
                                        "command lines are visible to other users)."),
    token_file: Optional[Path] = typer.Option(None, "--token-file", envvar="FLEETLENS_TOKEN_FILE",
                                              help="File holding the API token (first line)."),
) -> None:
    """Query-workload generator: a mix of every query family at a target rate against the API."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text

    from fleetlens.settings import active_settings
    from fleetlens.workload.mix import DEFAULT_MIX, parse_mix
    from fleetlens.workload.runner import run_load

    if rate <= 0 or clients < 1 or duration <= 0:
        raise typer.BadParameter("rate and duration must be > 0, clients >= 1")
    try:
        weights = parse_mix(mix or DEFAULT_MIX)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mix") from None
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the progress line
    settings = active_settings()
    base = url or f"http://{settings.query.host}:{settings.query.port}"
    console = Console(stderr=True)
    with Live(console=console, auto_refresh=False, transient=True) as live:
        def progress(result, done: float) -> None:
            n = sum(len(v) for v in result.latencies.values())
            errors = sum(result.errors.values())
            live.update(Text(f"{done:5.0%}  {n:,} answered  {errors:,} errors  {n / max(result.seconds, 1e-9):,.1f}/s"),
                        refresh=True)

        result = run_load(base, weights, rate, clients, duration, progress=progress,
                          token=read_token(token, token_file))
    summary = {"url": base, "rate": rate, "clients": clients, "mix": weights, **result.summary()}
    if output:
        output.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if as_json:
        typer.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"{summary['requests']:,} requests in {summary['seconds']} s ({summary['per_s']}/s), "
                  f"{clients} clients", title_justify="left")
    for col in ("family", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "server p50",
                "server p99"):
        table.add_column(col, justify="left" if col == "family" else "right")
    for name, f in summary["families"].items():
        table.add_row(name, str(f["requests"]), str(f["errors"]), str(f["per_s"]),
                      *(str(f.get(k, "")) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "server_p50_ms",
                                                    "server_p99_ms")))
    Console().print(table)
