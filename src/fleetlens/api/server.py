"""Serve an ASGI app with uvicorn in a background thread of this process.

chDB lets one process own the store, so ``fleetlens up`` runs the API beside ingest as a thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn


@dataclass
class ServerHandle:
    """A running server: where it listens, and how to stop it."""

    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask uvicorn to exit (finishing requests in flight) and wait for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout_s)


def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 10.0) -> ServerHandle:
    """Start uvicorn for ``app`` on ``host:port`` (0: a free port) in a daemon thread; return once it listens."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    # uvicorn leaves signal handling alone outside the main thread (fleetlens up keeps its Ctrl-C)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the API could not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
    return ServerHandle(server, thread, host, bound)
