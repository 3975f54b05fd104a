"""Running an ingest worker as a role: settings in, worker running until stopped or drained."""

from __future__ import annotations

import signal
import threading

from fleetlens.contract.decode import ARROW, ARROW_FALLBACK_WARNING, FAST_PATH
from fleetlens.ingest.stats import IngestStats
from fleetlens.ingest.worker import IngestWorker
from fleetlens.logsetup import get_logger
from fleetlens.settings import Settings
from fleetlens.sources.factory import open_source
from fleetlens.store.client import Store

log = get_logger(__name__)


def build_worker(settings: Settings, store: Store, stats: IngestStats | None = None) -> IngestWorker:
    """An ingest worker for the configured MQ, consumer group and consumer name."""
    source = open_source(settings, settings.ingest.group, settings.ingest.consumer)
    return IngestWorker(source, store, settings.ingest, stats)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set ``stop`` (a second one exits at once)."""

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("stopping: finishing the batch in flight (signal again to quit at once)", signal=signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run_ingest(settings: Settings, store: Store, until_idle_s: float | None = None) -> IngestStats:
    """Run one worker in this thread until a signal (or idle for ``until_idle_s``); returns its counters."""
    stop = threading.Event()
    stop_on_signals(stop)
    worker = build_worker(settings, store)
    log.info(
        "ingest started",
        mq=settings.mq,
        streams=settings.streams,
        group=settings.ingest.group,
        consumer=settings.ingest.consumer,
        decoder=FAST_PATH,
    )
    if FAST_PATH == ARROW:
        log.warning(ARROW_FALLBACK_WARNING)
    from fleetlens.observe.role import RoleObserver

    observer = RoleObserver(settings, store, worker.source, settings.ingest.group,
                            alive=lambda: worker.error is None).start(serve=True)
    try:
        worker.run(stop, until_idle_s=until_idle_s)
    finally:
        observer.stop()
        worker.source.close()
    log.info("ingest stopped", **worker.stats.snapshot())
    return worker.stats
