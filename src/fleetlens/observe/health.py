"""Liveness and readiness: named checks with a time bound, and the consumer-lag watcher.

``/healthz`` answers while the process serves requests. ``/readyz`` runs the checks a role
registered (store reachable, MQ reachable, consumer lag under ``observe.ready_max_lag``), each
bounded by ``observe.ready_timeout_s`` and cached for a second (the endpoints are public: a flood
of probes must not become a flood of store queries).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable

from fleetlens.logsetup import get_logger
from fleetlens.observe import metrics as prom
from fleetlens.settings import Settings
from fleetlens.sources.base import Lag, Source

log = get_logger(__name__)
#: A check returns a short detail when healthy and raises when not.
CheckFn = Callable[[], str]


class Readiness:
    """Named checks run together with a time bound; the last answer is reused for ``cache_s``."""

    def __init__(self, timeout_s: float = 2.0, cache_s: float = 1.0):
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self._checks: dict[str, CheckFn] = {}
        self._lock = threading.Lock()
        self._last: tuple[float, bool, dict[str, Any]] | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")

    def add(self, name: str, check: CheckFn) -> None:
        """Register (or replace) a check."""
        with self._lock:
            self._checks[name] = check
            self._last = None

    def check(self, name: str) -> CheckFn:
        """The check registered as ``name`` (to share it with another readiness)."""
        return self._checks[name]

    def names(self) -> list[str]:
        """The registered checks."""
        return list(self._checks)

    def evaluate(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, {check: {"ok": bool, "detail": str}})``; ready when every check passed in time."""
        with self._lock:
            if self._last and time.monotonic() - self._last[0] < self.cache_s:
                return self._last[1], self._last[2]
            checks = dict(self._checks)
            futures = {name: self._pool.submit(fn) for name, fn in checks.items()}
            deadline = time.monotonic() + self.timeout_s
            results: dict[str, Any] = {}
            for name, future in futures.items():
                try:
                    results[name] = {"ok": True, "detail": future.result(timeout=max(0.0, deadline - time.monotonic()))}
                except FutureTimeout:
                    results[name] = {"ok": False, "detail": f"no answer within {self.timeout_s:g} s"}
                except Exception as exc:  # noqa: BLE001 - reported as the check's failure
                    results[name] = {"ok": False, "detail": f"{exc.__class__.__name__}: {str(exc)[:200]}"}
            ready = all(r["ok"] for r in results.values())
            self._last = (time.monotonic(), ready, results)
            return ready, results


def store_check(store: Any, timeout_s: float) -> CheckFn:
    """The store answers ``SELECT 1``."""

    def check() -> str:
        store.query_scalar("SELECT 1", timeout_s=timeout_s)
        return "answers"

    return check


def mq_check(settings: Settings, timeout_s: float) -> CheckFn:
    """The configured MQ accepts a connection (Redis PING; Kafka metadata request)."""
    if settings.mq == "kafka":
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap, **settings.kafka.options})

        def kafka() -> str:
            brokers = admin.list_topics(timeout=timeout_s).brokers
            return f"{len(brokers)} broker(s)"

        return kafka

    from fleetlens.sources.redis import connect

    def redis() -> str:
        client = connect(settings.redis.url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            client.ping()
        finally:
            client.close()
        return "PONG"

    return redis


@dataclass
class LagReading:
    """The latest lag measurement of a consumer group."""

    lag: Lag | None = None
    measured_at: float = 0.0  # time.monotonic() of the last successful measurement
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class LagWatcher(threading.Thread):
    """Measures a consumer's lag every ``every_s`` into the metrics and the readiness check."""

    def __init__(self, source: Source, group: str, every_s: float):
        super().__init__(name=f"lag-{group}", daemon=True)
        self.source = source
        self.group = group
        self.every_s = every_s
        self.reading = LagReading()
        self.stop_event = threading.Event()

    def measure(self) -> None:
        """One measurement (errors are kept for /readyz, not raised)."""
        try:
            lag = self.source.lag()
        except Exception as exc:  # noqa: BLE001 - an unreachable MQ shows as not ready
            with self.reading.lock:
                self.reading.error = f"{exc.__class__.__name__}: {str(exc)[:200]}"
            return
        if not lag.known:
            return
        with self.reading.lock:
            self.reading.lag, self.reading.measured_at, self.reading.error = lag, time.monotonic(), ""
        prom.record_lag(self.group, lag.undelivered, lag.pending, time.time())

    def run(self) -> None:
        # The first measurement waits a period: a Kafka consumer is then reading and answers from
        # its reader thread's own measurement (broker calls from here could race its consume loop).
        while not self.stop_event.wait(self.every_s):
            self.measure()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop measuring and wait for a measurement in progress (up to ``timeout_s``)."""
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout_s)

    def check(self, max_lag: int) -> CheckFn:
        """Readiness: a fresh measurement (within 3 periods + 5 s) at most ``max_lag`` messages behind."""

        def lag_check() -> str:
            with self.reading.lock:
                lag, at, error = self.reading.lag, self.reading.measured_at, self.reading.error
            if lag is None or time.monotonic() - at > 3 * self.every_s + 5:
                raise RuntimeError(f"lag not measured recently{': ' + error if error else ''}")
            if lag.total > max_lag:
                raise RuntimeError(f"{lag.total} messages behind (bound {max_lag})")
            return f"{lag.total} messages behind"

        return lag_check
