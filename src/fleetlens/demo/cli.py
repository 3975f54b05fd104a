"""``fleetlens scenario list|run``: the demo scenarios, injected into a running ``fleetlens up``."""

from __future__ import annotations

import logging
import time
from typing import Optional

import httpx
import typer
from rich.console import Console
from rich.table import Table

from fleetlens.settings import active_settings
from fleetlens.simulate.scenarios import SCENARIOS

scenario_app = typer.Typer(help="Demo scenarios: inject one anomaly into a running fleetlens up and watch the alert arrive.",
                           no_args_is_help=True)


@scenario_app.command("list")
def list_scenarios() -> None:
    """Every scenario: what it does and which rules should alert on it."""
    table = Table("scenario", "key", "expected alerts", "what happens")
    for kind in SCENARIOS.values():
        table.add_row(kind.name, kind.key, ", ".join(kind.expected_rules), kind.description)
    Console().print(table)


@scenario_app.command("run")
def run(
    name: str = typer.Argument(..., help="Scenario name (fleetlens scenario list)."),
    target: Optional[str] = typer.Option(None, "--target", help="Provider, user id, service, operation or host (default: the simulator picks)."),
    duration: float = typer.Option(120.0, "--duration", help="How long the anomaly lasts, in seconds."),
    api: Optional[str] = typer.Option(None, "--api", help="Base url of the running fleetlens up (default: settings.query.host:port)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="FLEETLENS_TOKEN", help="An admin token (FLEETLENS_TOKEN)."),
    timeout: float = typer.Option(300.0, "--timeout", help="Give up waiting for the alerts after this many seconds."),
) -> None:
    """Inject NAME into the running pipeline's simulator, then show each expected alert arriving and how long it took."""
    if name not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}", param_hint="NAME")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is noise here
    settings = active_settings()
    base = api or f"http://{settings.query.host}:{settings.query.port}"
    console = Console()
    client = httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"} if token else {}, timeout=15)
    try:
        answer = client.post("/admin/scenarios", json={"scenario": name, "target": target, "duration_s": duration})
    except httpx.HTTPError as exc:
        raise typer.BadParameter(f"cannot reach fleetlens at {base}: {exc} (is fleetlens up running?)", param_hint="--api") from exc
    if answer.status_code != 200:
        raise typer.BadParameter(f"{base} answered {answer.status_code}: {answer.text[:300]}", param_hint="--token" if answer.status_code in (401, 403) else "NAME")
    label = answer.json()
    injected_at = time.time()
    key = next(iter(label["key"].values()))
    console.print(f"[bold]1. injected[/] {name} on {label['key']} from {label['start']} to {label['end']} "
                  f"(simulated time); expecting: {', '.join(label['expected_rules'])}")
    console.print("[bold]2. waiting[/] for the detector (polling /anomalies)…")
    waiting = set(label["expected_rules"])
    deadline = injected_at + timeout
    while waiting and time.time() < deadline:
        found = client.get("/anomalies", params={"rule": ",".join(sorted(waiting)), "key": key,
                                                 "start": label["start_ms"] - 600_000, "limit": 100})
        if found.status_code == 200:
            for alert in found.json().get("alerts", []):
                if alert["rule"] in waiting and alert["key"] == key:
                    waiting.discard(alert["rule"])
                    event_delay = (_ms(alert["ts_start"]) - label["start_ms"]) / 1000
                    console.print(f"[bold green]3. alert[/] {alert['rule']} on {alert['key']} ({alert['severity']}) "
                                  f"after {time.time() - injected_at:.1f} s wall clock; its first hit was "
                                  f"{event_delay:.1f} s of event time after the anomaly began  id={alert['id']}")
        time.sleep(0.5)
    if waiting:
        console.print(f"[bold red]no alert[/] for {', '.join(sorted(waiting))} within {timeout:.0f} s")
        raise typer.Exit(1)
    console.print("[bold]done[/]: open the dashboard's alerts page to see the evidence.")


def _ms(value) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    from datetime import datetime

    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
