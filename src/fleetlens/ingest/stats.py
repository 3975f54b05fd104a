"""Counters of one ingest worker, read by the live status line and the benchmarks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class IngestStats:
    """Running totals of what a worker read, stored, rejected and skipped (thread-safe updates)."""

    messages: int = 0
    events_stored: int = 0
    metrics_stored: int = 0
    rejected: int = 0
    duplicates_skipped: int = 0
    batches: int = 0
    retries: int = 0
    last_insert_s: float = 0.0
    read_seconds: float = 0.0  # time the reader spent in MQ reads
    decode_seconds: float = 0.0  # time the reader spent decoding batches
    store_seconds: float = 0.0  # time the writer spent storing and acknowledging batches
    started_at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **increments: float) -> None:
        """Add to several counters at once; ``last_insert_s`` is set, not added."""
        with self._lock:
            for name, value in increments.items():
                if name == "last_insert_s":
                    self.last_insert_s = float(value)
                else:
                    setattr(self, name, getattr(self, name) + value)

    @property
    def stored(self) -> int:
        """Events and metric samples in the store, written by this worker."""
        return self.events_stored + self.metrics_stored

    def snapshot(self) -> dict[str, float]:
        """A consistent copy of the counters."""
        with self._lock:
            return {
                "messages": self.messages,
                "events_stored": self.events_stored,
                "metrics_stored": self.metrics_stored,
                "stored": self.stored,
                "rejected": self.rejected,
                "duplicates_skipped": self.duplicates_skipped,
                "batches": self.batches,
                "retries": self.retries,
                "last_insert_s": self.last_insert_s,
                "read_seconds": self.read_seconds,
                "decode_seconds": self.decode_seconds,
                "store_seconds": self.store_seconds,
                "uptime_s": time.monotonic() - self.started_at,
            }
