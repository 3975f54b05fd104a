"""``fleetlens detect``: run the streaming detector as a role, or print its effective rules."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fleetlens.settings import active_settings


def detect(
    rules: Optional[Path] = typer.Option(None, "--rules", help="YAML rules file (default: settings.detect.rules_file, else the defaults)."),
    until_idle: Optional[float] = typer.Option(
        None, "--until-idle", help="Exit once no new message arrived for this many seconds (default: run until stopped)."
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
