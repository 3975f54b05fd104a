"""``fleetlens query …``: the query families in the terminal (rich tables, or ``--json``).

Same functions and parameters as the HTTP API. The command opens the store itself, so with the
embedded store it cannot run while ``fleetlens up`` holds the data directory: ask the API then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from fleetlens.query.common import QueryResult

query_app = typer.Typer(help="Ask the store: traces, events, users, business, performance, anomalies, rejections.",
                        no_args_is_help=True)

START = typer.Option(None, "--start", help="Range start: RFC 3339 (2026-11-22T10:00:00Z) or epoch ms. Default: end - 1 h.")
END = typer.Option(None, "--end", help="Range end (exclusive): RFC 3339 or epoch ms. Default: now.")
LIMIT = typer.Option(None, "--limit", help="Rows per page (default settings.query.default_limit).")
CURSOR = typer.Option(None, "--cursor", help="next_cursor printed by the previous page.")
JSON = typer.Option(False, "--json", help="Print the result as JSON (the API's body) instead of tables.")


def _run(query: Callable[..., QueryResult], as_json: bool, **kwargs: object) -> None:
    """Open the store, run ``query`` with the settings' limits, print the result; bad input exits 2."""
    from fleetlens.query.common import Limits, QueryError
    from fleetlens.settings import active_settings
    from fleetlens.store.client import open_store

    settings = active_settings()
    try:
        store = open_store(settings)
    except Exception as exc:  # noqa: BLE001 - one line for the user (e.g. the data directory is locked by `up`)
        raise typer.BadParameter(f"cannot open the store: {exc}") from None
    try:
        from fleetlens.archive.reader import ArchiveView

        result = query(store, **kwargs, limits=Limits.from_settings(settings.query, archive=ArchiveView.from_settings(settings)))
    except QueryError as exc:
        raise typer.BadParameter(exc.message, param_hint=f"--{exc.param.replace('_', '-')}") from None
    finally:
        store.close()
    print_result(result, as_json)


def print_result(result: QueryResult, as_json: bool, console: Console | None = None) -> None:
    """The result as JSON, or one rich table per result table plus a line of facts."""
    from fleetlens.query.common import rows

    if as_json:
        typer.echo(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode())
        return
    console = console or Console()
    for name, table in result.tables.items():
        out = Table(title=f"{name} ({table.num_rows} rows)", title_justify="left")
        for col in table.column_names:
            out.add_column(col, overflow="fold", max_width=80 if col == "message" else None)
        for row in rows(table):
            out.add_row(*(_cell(v) for v in row.values()))
        console.print(out)
    facts = {k: v for k, v in result.to_json().items() if not isinstance(v, list)}
    console.print("  ".join(f"[bold]{k}[/] {v}" for k, v in facts.items()), soft_wrap=True)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


@query_app.command("trace")
def trace_cmd(
    action_id: str = typer.Argument(..., help="The action_id shared by the services of one operation."),
    start: Optional[str] = typer.Option(None, "--start", help="Narrow the action's own time range: start."),
    end: Optional[str] = typer.Option(None, "--end", help="Narrow the action's own time range: end."),
    limit: Optional[int] = LIMIT,
    as_json: bool = JSON,
) -> None:
    """Every event of one action in time order, and one span per service (a waterfall)."""
    from fleetlens.query.trace import trace

    _run(trace, as_json, action_id=action_id, start=start, end=end, limit=limit)


@query_app.command("events")
def events_cmd(
    start: Optional[str] = START, end: Optional[str] = END, limit: Optional[int] = LIMIT, cursor: Optional[str] = CURSOR,
    level: list[str] = typer.Option([], "--level", help="debug, info, warn, error (repeat or comma-separate)."),
    service: list[str] = typer.Option([], "--service", help="Services (repeat or comma-separate)."),
    event_type: list[str] = typer.Option([], "--event-type", help="Log event types."),
    host: list[str] = typer.Option([], "--host", help="Hosts."),
    pod: list[str] = typer.Option([], "--pod", help="Pods."),
    container: list[str] = typer.Option([], "--container", help="Containers."),
    node: list[str] = typer.Option([], "--node", help="Kubernetes nodes."),
    logger: list[str] = typer.Option([], "--logger", help="Logger names."),
    source_file: list[str] = typer.Option([], "--source-file", help="Source files."),
    kind: list[str] = typer.Option([], "--kind", help="log or business."),
    operation: list[str] = typer.Option([], "--operation", help="Business operations."),
    text: str = typer.Option("", "--text", help="Words that must all occur in the message (case-insensitive)."),
    as_json: bool = JSON,
) -> None:
    """Search logs and business events, newest first, with counts by level."""
    from fleetlens.query.events import EventFilter, search_events

    flt = EventFilter(levels=level, services=service, event_types=event_type, hosts=host, pods=pod,
                      containers=container, nodes=node, loggers=logger, source_files=source_file, kinds=kind,
                      operations=operation, text=text)
    _run(search_events, as_json, flt=flt, start=start, end=end, limit=limit, cursor=cursor)


@query_app.command("users")
def users_cmd(
    start: Optional[str] = START, end: Optional[str] = END,
    step: str = typer.Option("1m", "--step", help="Distance between instants: 1m or coarser."),
    window_min: Optional[int] = typer.Option(None, "--window-min", help="Trailing window in minutes (default settings.query.users_window_min)."),
    as_json: bool = JSON,
) -> None:
    """Simultaneous users viewing and buying over time."""
    from fleetlens.query.users import simultaneous_users

    _run(simultaneous_users, as_json, start=start, end=end, step=step, window_min=window_min)


@query_app.command("business")
def business_cmd(
    start: Optional[str] = START, end: Optional[str] = END,
    interval: str = typer.Option("1h", "--interval", help="15m, 1h, 3h or 1d."),
    as_json: bool = JSON,
) -> None:
    """Transactions, page views, reservations, cancellations, refunds; retries by provider."""
    from fleetlens.query.business import business_metrics

    _run(business_metrics, as_json, start=start, end=end, interval=interval)


@query_app.command("perf")
def perf_cmd(
    start: Optional[str] = START, end: Optional[str] = END,
    interval: str = typer.Option("1h", "--interval", help="1m, 5m, 15m, 1h, 3h or 1d."),
    resources: bool = typer.Option(False, "--resources", help="CPU/RAM per host or service beside active users, instead of durations."),
    by: str = typer.Option("operation", "--by", help="Durations by operation (business) or event_type (logs)."),
    group: str = typer.Option("host", "--group", help="Resources per host or service."),
    service: list[str] = typer.Option([], "--service", help="Services."),
    host: list[str] = typer.Option([], "--host", help="Hosts (resources)."),
    name: list[str] = typer.Option([], "--name", help="Operations or event types to keep (durations)."),
    as_json: bool = JSON,
) -> None:
    """Operation execution time per interval (min/max/avg/p50/p90/p95/p99), or CPU/RAM with --resources."""
    from fleetlens.query import perf

    if resources:
        _run(perf.resources, as_json, group=group, hosts=host, services=service, start=start, end=end, interval=interval)
    else:
        _run(perf.durations, as_json, by=by, services=service, names=name, start=start, end=end, interval=interval)


@query_app.command("anomalies")
def anomalies_cmd(
    start: Optional[str] = START, end: Optional[str] = END, limit: Optional[int] = LIMIT, cursor: Optional[str] = CURSOR,
    rule: list[str] = typer.Option([], "--rule", help="Rules."),
    key: list[str] = typer.Option([], "--key", help="Keys (provider, user, service…)."),
    severity: list[str] = typer.Option([], "--severity", help="Severities."),
    status: list[str] = typer.Option([], "--status", help="firing or resolved."),
    as_json: bool = JSON,
) -> None:
    """Alerts the detector raised, newest first."""
    from fleetlens.query.anomalies import anomalies

    _run(anomalies, as_json, rules=rule, keys=key, severities=severity, statuses=status, start=start, end=end,
         limit=limit, cursor=cursor)


@query_app.command("rejections")
def rejections_cmd(
    start: Optional[str] = START, end: Optional[str] = END, limit: Optional[int] = LIMIT, as_json: bool = JSON,
) -> None:
    """Rejected lines by field and reason."""
    from fleetlens.query.rejections import rejection_counts

    _run(rejection_counts, as_json, start=start, end=end, limit=limit)
