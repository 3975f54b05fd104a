"""``GET /stats/ingest``: the dashboard's overview numbers (ingest rate, consumer lag, errors per interval).

Inside ``fleetlens up`` the running worker answers for the live part (its counters and the consumer
group's lag, see :class:`LiveIngest`); elsewhere (``fleetlens api``) the store's recent counts do and
the lag is unknown (``null``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from fleetlens.query import ingest

router = APIRouter()


class LiveIngest:
    """A running ingest worker seen from the API thread: rate over the last seconds, lag, counters."""

    def __init__(self, stats, worker, window_s: float = 10.0) -> None:
        self.stats, self.worker, self.window_s = stats, worker, window_s
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        """``rate_per_s`` (stored events and samples per second over the last ``window_s``), ``lag``, counters."""
        snap = self.stats.snapshot()
        now = time.monotonic()
        with self._lock:
            self._samples.append((now, snap["stored"]))
            while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
                self._samples.popleft()
            t0, n0 = self._samples[0]
        rate = (snap["stored"] - n0) / (now - t0) if now - t0 >= 1.0 else snap["stored"] / max(snap["uptime_s"], 1e-9)
        try:
            lag = self.worker.source.lag()
            lag_value = lag.total if lag.known else None
        except Exception:  # noqa: BLE001 - the overview shows "unknown" rather than failing
            lag_value = None
        return {"source": "worker", "rate_per_s": round(rate, 1), "lag": lag_value, "stored": snap["stored"],
                "rejected": snap["rejected"], "duplicates_skipped": snap["duplicates_skipped"]}


@router.get("/stats/ingest", summary="Ingest rate, consumer lag, events, errors and error rate per interval")
def get_ingest_stats(request: Request, start: Annotated[str | None, Query(description="Range start: RFC 3339 or epoch ms. Default: end − 1 h.")] = None,
                     end: Annotated[str | None, Query(description="Range end (exclusive): RFC 3339 or epoch ms. Default: now.")] = None,
                     interval: Annotated[str, Query(description="1m, 5m, 15m, 1h, 3h or 1d.")] = "1m") -> dict[str, Any]:
    """``buckets`` per interval (events, logs, errors, business, metrics, error_rate), ``totals`` over the
    range, and ``live``: ``rate_per_s`` and ``lag`` from the running worker (``source: worker``) or the
    store's last minute (``source: store``, lag null)."""
    store, limits = request.app.state.store, request.app.state.limits
    result = ingest.ingest_overview(store, start=start, end=end, interval=interval, limits=limits).to_json()
    probe: LiveIngest | None = getattr(request.app.state, "live_ingest", None)
    if probe is not None:
        result["live"] = probe.snapshot()
    else:
        result["live"] = {"source": "store", "rate_per_s": round(ingest.recent_rate(store, limits=limits), 1),
                          "lag": None, "stored": None, "rejected": None, "duplicates_skipped": None}
    return result
