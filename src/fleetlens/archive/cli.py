"""``fleetlens archive run | status | restore``."""

from __future__ import annotations

import datetime as dt
from typing import Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

archive_app = typer.Typer(
    help="The archive: days older than archive.retention_days as Parquet in a directory or on S3 (docs/archive.md).",
    no_args_is_help=True,
)


def _open(console: Console):
    from fleetlens.archive.layout import target_from_settings
    from fleetlens.settings import active_settings
    from fleetlens.store.client import open_store

    settings = active_settings()
    try:
        target = target_from_settings(settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        store = open_store(settings)
    except Exception as exc:  # noqa: BLE001 - one line for the user (e.g. the store is locked by `up`)
        raise typer.BadParameter(f"cannot open the store: {exc} (the embedded store is archived by `fleetlens up` "
                                 "itself while it runs)") from None
    return settings, store, target


def _day(param: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a day (YYYY-MM-DD): {value!r}", param_hint=param) from None


@archive_app.command("run")
def run_cmd(
    retention_days: Optional[int] = typer.Option(
        None, "--retention-days", help="Archive days older than this many days (default: archive.retention_days)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run's result as JSON."),
) -> None:
    """Archive every day partition older than the retention: export, read back and verify, then drop from the hot store."""
    from fleetlens.archive.archiver import Archiver, cutoff_day

    console = Console(stderr=True)
    settings, store, target = _open(console)
    cutoff = cutoff_day(retention_days if retention_days is not None else settings.archive.retention_days)
    console.print(f"archiving days before {cutoff} to {target.describe()}")

    def progress(table: str, step: str, day: dt.date, detail: str) -> None:
        console.print(f"  {table} {day} {step} {detail}".rstrip(), highlight=False)

    try:
        result = Archiver(store, target, restore_keep_days=settings.archive.restore_keep_days, progress=progress).run(cutoff)
    finally:
        store.close()
    if as_json:
        typer.echo(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        console.print(f"done in {result.seconds:.1f} s: {result.rows:,} rows, {result.bytes / 1e6:,.1f} MB over "
                      f"{len([d for d in result.days if d.status == 'archived'])} day partitions; "
                      f"{len(result.failed)} failed")
        for d in result.failed:
            console.print(f"[red]failed[/] {d.table} {d.date}: {d.error}")
    if result.failed:
        raise typer.Exit(1)


@archive_app.command("status")
def status_cmd(as_json: bool = typer.Option(False, "--json", help="Print the status as JSON.")) -> None:
    """Hot days, archived days, sizes, compression ratio and the last run."""
    from fleetlens.archive.status import archive_summary

    console = Console()
    _, store, target = _open(console)
    try:
        summary = archive_summary(store, target)
    finally:
        store.close()
    if as_json:
        typer.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    console.print(f"[bold]archive[/] {summary['target']}")
    tables = list(summary["hot"])
    out = Table(title="hot and archived, per table", title_justify="left")
    out.add_column("")
    for table in tables:
        out.add_column(table, justify="right")
    hot, totals = summary["hot"], summary["totals"]

    def ratio(value: float | None) -> str:
        return f"{value}x" if value else "-"

    for label, cell in (
        ("hot days", lambda t: str(len(hot[t]))),
        ("hot rows", lambda t: f"{sum(r['rows'] for r in hot[t]):,}"),
        ("hot MB", lambda t: f"{sum(r['bytes'] for r in hot[t]) / 1e6:,.1f}"),
        ("archived days", lambda t: str(totals[t]["days"])),
        ("archived rows", lambda t: f"{totals[t]['rows']:,}"),
        ("Parquet MB", lambda t: f"{totals[t]['bytes'] / 1e6:,.1f}"),
        ("uncompressed ÷ Parquet", lambda t: ratio(totals[t]["compression_ratio"])),
        ("hot compressed ÷ Parquet", lambda t: ratio(totals[t]["vs_hot"])),
    ):
        out.add_row(label, *(cell(t) for t in tables))
    console.print(out)
    for table, days in summary["archived"].items():
        if days:
            console.print(f"{table}: archived {days[0]['date']} … {days[-1]['date']}"
                          + "".join(f"; {d['date']} restored" for d in days if d["state"] == "restored"))
    last = summary["last_run"]
    if last:
        console.print(f"last run: {last['started_at']} → {last['finished_at']}, {last['rows']:,} rows, "
                      f"{last['bytes'] / 1e6:,.1f} MB, {sum(1 for d in last['days'] if d['status'] == 'failed')} failed")
    else:
        console.print("last run: never")


@archive_app.command("restore")
def restore_cmd(
    first: str = typer.Option(..., "--from", help="First day to bring back (YYYY-MM-DD, UTC)."),
    last: str = typer.Option(..., "--to", help="Last day to bring back, inclusive (YYYY-MM-DD)."),
) -> None:
    """Bring archived days back into the hot store (no duplicates if a day is partly hot)."""
    from fleetlens.archive.restore import restore

    d1, d2 = _day("--from", first), _day("--to", last)
    if d2 < d1:
        raise typer.BadParameter(f"{d2} is before {d1}", param_hint="--to")
    console = Console(stderr=True)
    settings, store, target = _open(console)
    try:
        days = restore(store, target, d1, d2, progress=lambda t, d: console.print(f"  restoring {t} {d}", highlight=False))
    finally:
        store.close()
    console.print(f"restored {len(days)} day partitions, {sum(d.inserted_rows for d in days):,} rows inserted "
                  f"({sum(d.archived_rows for d in days):,} archived rows); they stay hot for "
                  f"{settings.archive.restore_keep_days} days")
