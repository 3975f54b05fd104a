"""Running the detector as a role (``fleetlens detect``): store, signals, metrics server, summary."""

from __future__ import annotations

import threading

from fleetlens.contract.decode import ARROW, ARROW_FALLBACK_WARNING, FAST_PATH
from fleetlens.detect.config import RulesConfig
from fleetlens.detect.runner import Detector, DetectorStats
from fleetlens.ingest.run import stop_on_signals
from fleetlens.logsetup import get_logger
from fleetlens.settings import Settings

log = get_logger(__name__)


def run_detect(settings: Settings, rules: RulesConfig, until_idle_s: float | None = None,
               with_store: bool = True) -> DetectorStats:
    """Run one detector in this thread until a signal (or idle for ``until_idle_s``)."""
    from fleetlens.store.client import open_store

    stop = threading.Event()
    stop_on_signals(stop)
    store = open_store(settings) if with_store else None
    detector = Detector(settings, store, rules)
    log.info("detector started", mq=settings.mq, streams=settings.streams, group=settings.detect.group,
             rules=[r.name for r in detector.engine.rules], decoder=FAST_PATH)
    if FAST_PATH == ARROW:
        log.warning(ARROW_FALLBACK_WARNING)
    server = None
    if settings.observe.metrics_server:
        from fleetlens.observe.health import Readiness, mq_check, store_check
        from fleetlens.observe.server import serve_metrics

        readiness = Readiness(settings.observe.ready_timeout_s)
        readiness.add("mq", mq_check(settings, settings.observe.ready_timeout_s))
        if store is not None:
            readiness.add("store", store_check(store, settings.observe.ready_timeout_s))
        try:
            server = serve_metrics(settings, readiness, lambda: detector.error is None)
        except OSError as exc:
            log.warning("metrics server not started", error=str(exc))
    try:
        stats = detector.run(stop, until_idle_s=until_idle_s)
    finally:
        if server is not None:
            server.stop()
        if store is not None:
            store.close()
    log.info("detector stopped", events=stats.events, alerts_raised=stats.alerts_raised,
             alerts_resolved=stats.alerts_resolved, late_events=stats.late_events, replayed=stats.replayed_messages)
    return stats
