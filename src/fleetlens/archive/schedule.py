"""The archiver as a thread of ``fleetlens up``: a run at start, then every ``archive.interval_s``."""

from __future__ import annotations

import threading

from fleetlens.archive.archiver import Archiver, RunResult, cutoff_day
from fleetlens.archive.layout import target_from_settings
from fleetlens.logsetup import get_logger
from fleetlens.settings import Settings
from fleetlens.store.client import Store

log = get_logger(__name__)


class ArchiveScheduler(threading.Thread):
    """Runs the archiver on ``store`` periodically until :meth:`stop`; a failed run is logged and retried
    at the next interval (the hot rows of a failed day are untouched)."""

    def __init__(self, settings: Settings, store: Store, on_run=None) -> None:
        super().__init__(name="archiver", daemon=True)
        self.settings = settings
        self.archiver = Archiver(store, target_from_settings(settings), restore_keep_days=settings.archive.restore_keep_days)
        self.on_run = on_run  # called with each RunResult (e.g. to refresh the API's archive view)
        self._stop_requested = threading.Event()
        self.last: RunResult | None = None
        self.failed_runs = 0  # runs that raised (e.g. the target unreachable before any day started)
        self.last_error: str | None = None

    def run(self) -> None:
        while not self._stop_requested.is_set():
            try:
                self.last = self.archiver.run(cutoff_day(self.settings.archive.retention_days))
                if self.last.days:
                    log.info("archive run", rows=self.last.rows, bytes=self.last.bytes, days=len(self.last.days),
                             failed=len(self.last.failed), seconds=self.last.seconds)
                if self.on_run:
                    self.on_run(self.last)
            except Exception as exc:  # noqa: BLE001 - the stack keeps running; the next interval retries
                self.failed_runs += 1
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.exception("archive run failed; retried at the next interval", in_s=self.settings.archive.interval_s)
            if self._stop_requested.wait(self.settings.archive.interval_s):
                break

    def stop(self) -> None:
        """Ask the thread to stop and wait for a run in progress to finish (a run never stops mid-day)."""
        self._stop_requested.set()
        self.join()
