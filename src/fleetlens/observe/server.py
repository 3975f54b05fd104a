"""A small HTTP server with ``/metrics``, ``/healthz`` and ``/readyz`` for roles without the API.

``fleetlens ingest`` (and later the detector and the archiver run alone) serve it on
``observe.host:observe.port``. ``/metrics`` takes the same bearer tokens as the API unless
``auth.metrics_public`` (or ``auth.enabled`` is false); the health endpoints are public.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST

from fleetlens.observe import metrics as prom
from fleetlens.observe.health import Readiness
from fleetlens.settings import Settings

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class MetricsServer:
    """A running metrics and health server."""

    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _handler(settings: Settings, readiness: Readiness, alive: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    from fleetlens.api.auth import TokenStore

    tokens = TokenStore(settings.tokens_path)
    need_token = settings.auth.enabled and not settings.auth.metrics_public

    class Handler(BaseHTTPRequestHandler):
        server_version = "fleetlens"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - no access log (tokens in headers)
            return

        def _send(self, status: int, body: bytes, content_type: str = "application/json",
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {**_HEADERS, **(extra or {}), "Content-Type": content_type}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                ok = alive()
                self._send(200 if ok else 503, orjson.dumps({"status": "ok" if ok else "failed"}))
            elif path == "/readyz":
                ready, checks = readiness.evaluate()
                self._send(200 if ready else 503, orjson.dumps({"ready": ready, "checks": checks}))
            elif path == "/metrics":
                if need_token and not self._authorized():
                    prom.AUTH_FAILURES.labels("metrics_token").inc()
                    self._send(401, b'{"error":"a bearer token is required"}', extra={"WWW-Authenticate": "Bearer"})
                    return
                self._send(200, prom.exposition(), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b'{"error":"not found"}')

        do_HEAD = do_GET

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            return scheme.lower() == "bearer" and tokens.verify(token) is not None

    return Handler


def serve_metrics(settings: Settings, readiness: Readiness, alive: Callable[[], bool] = lambda: True,
                  host: str | None = None, port: int | None = None) -> MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` in a daemon thread (``observe.host:port`` by default)."""
    server = ThreadingHTTPServer((host or settings.observe.host, settings.observe.port if port is None else port),
                                 _handler(settings, readiness, alive))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
