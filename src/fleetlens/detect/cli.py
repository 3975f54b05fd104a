"""``fleetlens detect``: run the streaming detector as a role, or print its effective rules."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fleetlens.settings import active_settings


def detect(
    rules: Optional[Path] = typer.Option(None, "--rules", help="YAML rules file (default: settings.detect.rules_file, else the defaults)."),
    until_idle: Optional[float] = typer.Option(
        None, "--until-idle", help="Exit once no new message arrived for this many seconds and the group has none left to deliver (default: run until stopped)."
    ),
    print_rules: bool = typer.Option(False, "--print-rules", help="Print the effective rules as YAML and exit."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not write alerts to the store (webhooks/MQ only)."),
) -> None:
    """Run the streaming detector: its own consumer group, rules over micro-batches, alerts to the configured sinks."""
    from fleetlens.detect.config import dump_rules, load_rules

    settings = active_settings()
    if rules is not None:
        settings = settings.model_copy(update={"detect": settings.detect.model_copy(update={"rules_file": rules})})
    try:
        config = load_rules(settings.detect.rules_file)
    except Exception as exc:  # noqa: BLE001 - a bad rules file is the user's to fix: say what is wrong
        raise typer.BadParameter(str(exc), param_hint="--rules") from exc
    if print_rules:
        typer.echo(dump_rules(config), nl=False)
        return
    from fleetlens.detect.run import run_detect

    run_detect(settings, config, until_idle_s=until_idle, with_store=not no_store)


def reprocess(
    from_: str = typer.Option(..., "--from", help="First day (YYYY-MM-DD) or instant (RFC 3339) to replay."),
    to: str = typer.Option(..., "--to", help="Last day (YYYY-MM-DD, included) or instant (RFC 3339, excluded)."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="YAML rules file to replay with (default: settings.detect.rules_file)."),
) -> None:
    """Replay stored events (hot and archived days) through the detector; new alerts go to the store only, existing ones stay untouched."""
    import datetime as dt

    from rich.console import Console
    from rich.progress import Progress

    from fleetlens.detect.config import load_rules
    from fleetlens.detect.reprocess import reprocess as run_reprocess
    from fleetlens.store.client import open_store

    def instant(value: str, param: str, day_end: bool) -> dt.datetime:
        try:
            if len(value) == 10:
                day = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
                return day + dt.timedelta(days=1) if day_end else day
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise typer.BadParameter(f"{value!r} is neither YYYY-MM-DD nor RFC 3339", param_hint=param) from exc

    start, end = instant(from_, "--from", False), instant(to, "--to", True)
    if end <= start:
        raise typer.BadParameter("--to must be after --from", param_hint="--to")
    settings = active_settings()
    try:
        config = load_rules(rules or settings.detect.rules_file)
    except Exception as exc:  # noqa: BLE001 - shown as a one-line error
        raise typer.BadParameter(str(exc), param_hint="--rules") from exc
    console = Console(stderr=True)
    store = open_store(settings)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("reprocessing", total=None)

            def step(done: int, total: int, summary) -> None:
                progress.update(task, total=total, completed=done, description=f"{summary.events:,} events")

            summary = run_reprocess(settings, store, config, start, end, progress=step)
    finally:
        store.close()
    console.print(f"reprocessed {summary.events:,} events and samples in {summary.hours} hour(s) "
                  f"({summary.seconds:.1f} s; archived days read: {', '.join(sorted(summary.archive_days)) or 'none'}); "
                  f"new alerts: {len(summary.alerts_new)}, already stored (left as they were): "
                  f"{len(summary.alerts_already_stored)}", soft_wrap=True, highlight=False)
