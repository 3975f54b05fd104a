"""Event-time progress per partition and the watermark derived from it.

Each stream (Redis) or partition (Kafka) moves forward on its own: a consumer draining a
backlog of several partitions sees event time jump back and forth between them. The watermark is
the minimum over the partitions of the newest event time seen, minus the allowed lateness; a
partition that has been silent for ``idle_s`` (wall clock) stops holding it back. When every
partition is silent and the newest event time is close to the wall clock (live traffic, not a
replay of old data), the watermark follows the wall clock instead: a fleet that stops sending
altogether still closes its windows (traffic_drop sees the empty minutes, alerts resolve).
Windows ending at or before the watermark are complete; events older than it are late.
"""

from __future__ import annotations

import time
from typing import Iterable

NEVER = -(2**62)
LIVE_SKEW_MS = 300_000  # newest event time within this of the wall clock: the data is live


class Watermarks:
    """Newest event time per partition and the resulting watermark."""

    def __init__(self, allowed_lateness_ms: int, idle_s: float = 30.0):
        self.allowed_lateness_ms = allowed_lateness_ms
        self.idle_s = idle_s
        self._newest: dict[str, int] = {}
        self._seen_at: dict[str, float] = {}

    def expect(self, partitions: Iterable[str]) -> None:
        """The partitions this consumer reads. One not heard from yet holds the watermark back for ``idle_s``:
        a consumer catching up on a backlog may get one partition's messages long before another's."""
        now = time.monotonic()
        for partition in partitions:
            self._seen_at.setdefault(partition, now)

    def observe(self, partition: str, newest_ms: int | None) -> None:
        """Record that ``partition`` delivered events up to ``newest_ms`` (None: nothing new)."""
        self._seen_at[partition] = time.monotonic()
        if newest_ms is not None and newest_ms > self._newest.get(partition, NEVER):
            self._newest[partition] = newest_ms

    def watermark(self) -> int:
        """Event time up to which every window is complete (NEVER before any event)."""
        now = time.monotonic()
        if any(p not in self._newest and now - at < self.idle_s for p, at in self._seen_at.items()):
            return NEVER  # an expected partition has delivered nothing yet
        active = [t for p, t in self._newest.items() if now - self._seen_at.get(p, now) < self.idle_s]
        if active:
            return min(active) - self.allowed_lateness_ms
        if not self._newest:
            return NEVER
        newest = max(self._newest.values())
        wall_ms = int(time.time() * 1000)
        if abs(wall_ms - newest) < LIVE_SKEW_MS:  # all silent, live data: follow the wall clock
            return max(newest, wall_ms - int(self.idle_s * 1000)) - self.allowed_lateness_ms
        return min(self._newest.values()) - self.allowed_lateness_ms

    def newest_by_partition(self) -> dict[str, int]:
        """The newest event time seen per partition."""
        return dict(self._newest)

    def newest(self) -> int:
        """The newest event time over every partition (NEVER before any event)."""
        return max(self._newest.values(), default=NEVER)
