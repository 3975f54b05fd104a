"""``fleetlens api``: open the store and serve the API in this process until Ctrl-C."""

from __future__ import annotations

import threading

from rich.console import Console

from fleetlens.api.app import create_app
from fleetlens.api.auth import TokenStore
from fleetlens.api.server import serve_in_thread
from fleetlens.settings import Settings
from fleetlens.store.client import open_store


def run_api(settings: Settings, host: str | None = None, port: int | None = None,
            stop: threading.Event | None = None) -> None:
    """Serve until ``stop`` is set or Ctrl-C; the store is closed after the server stopped."""
    from fleetlens.ingest.run import stop_on_signals

    console = Console(stderr=True, soft_wrap=True)  # URLs and paths stay on one line when piped
    stop = stop or threading.Event()
    stop_on_signals(stop)
    store = open_store(settings)
    try:
        handle = serve_in_thread(create_app(store, settings), host or settings.query.host,
                                 settings.query.port if port is None else port)
        console.print(f"[bold]fleetlens api[/]  {handle.url}  (OpenAPI: {handle.url}/docs)  Ctrl-C stops")
        if settings.auth.enabled and not TokenStore(settings.tokens_path).has_active():
            console.print(f"[yellow]no API token exists yet[/] in {settings.tokens_path}: every request gets 401. "
                          "Create one with `fleetlens token create --role admin --name me`.")
        try:
            while not stop.wait(0.5):
                if not handle.thread.is_alive():
                    raise SystemExit("the API server stopped unexpectedly")
        finally:
            handle.stop()
    finally:
        store.close()
