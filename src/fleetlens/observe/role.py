"""Watching one consumer role: its lag in the metrics, its readiness checks, and (without the API)
the metrics and health server."""

from __future__ import annotations

from typing import Any, Callable

from fleetlens.logsetup import get_logger
from fleetlens.observe.health import LagWatcher, Readiness, mq_check, store_check
from fleetlens.observe.server import MetricsServer, serve_metrics
from fleetlens.settings import Settings
from fleetlens.sources.base import Source

log = get_logger(__name__)


class RoleObserver:
    """Lag watcher + readiness (store, MQ, lag) of a consumer, and optionally the metrics server."""

    def __init__(self, settings: Settings, store: Any, source: Source, group: str,
                 alive: Callable[[], bool] = lambda: True):
        obs = settings.observe
        self.settings = settings
        self.alive = alive
        self.readiness = Readiness(obs.ready_timeout_s)
        self.lag = LagWatcher(source, group, obs.lag_every_s)
        self.readiness.add("store", store_check(store, obs.ready_timeout_s))
        self.readiness.add("mq", mq_check(settings, obs.ready_timeout_s))
        self.readiness.add("lag", self.lag.check(obs.ready_max_lag))
        self.server: MetricsServer | None = None

    def start(self, serve: bool) -> "RoleObserver":
        """Start measuring the lag; with ``serve`` (and ``observe.metrics_server``) also the server.

        A port already taken is logged, not fatal: the role's work matters more than its metrics.
        """
        self.lag.start()
        if serve and self.settings.observe.metrics_server:
            try:
                self.server = serve_metrics(self.settings, self.readiness, self.alive)
            except OSError as exc:
                log.warning("metrics server not started", host=self.settings.observe.host,
                            port=self.settings.observe.port, error=str(exc))
            else:
                log.info("metrics and health", url=self.server.url, endpoints="/metrics /healthz /readyz")
        return self

    def stop(self) -> None:
        """Stop the server and the lag watcher."""
        if self.server:
            self.server.stop()
        self.lag.stop()
