"""The watermark: minimum over partitions, idle partitions, and a silent live fleet following the wall clock."""

from __future__ import annotations

import time

from fleetlens.detect.watermark import NEVER, Watermarks


def test_the_slowest_active_partition_holds_the_watermark():
    w = Watermarks(allowed_lateness_ms=1000, idle_s=30)
    assert w.watermark() == NEVER
    w.observe("a", 10_000)
    w.observe("b", 5_000)
    assert w.watermark() == 4_000


def test_an_idle_partition_stops_holding_it_back():
    w = Watermarks(allowed_lateness_ms=0, idle_s=0.05)
    w.observe("a", 5_000)
    time.sleep(0.1)
    w.observe("b", 10_000)
    assert w.watermark() == 10_000


def test_a_silent_live_fleet_follows_the_wall_clock_but_old_data_does_not():
    live = Watermarks(allowed_lateness_ms=1000, idle_s=0.05)
    now = int(time.time() * 1000)
    live.observe("a", now - 20_000)
    time.sleep(0.1)
    assert live.watermark() >= now - 1000 - 100  # every partition silent: wall clock minus idle and lateness
    old = Watermarks(allowed_lateness_ms=1000, idle_s=0.05)
    old.observe("a", 1_790_000_000_000)  # a replay of old data: stays where the data is
    time.sleep(0.1)
    assert old.watermark() == 1_790_000_000_000 - 1000


def test_an_expected_partition_that_delivered_nothing_yet_holds_the_watermark():
    w = Watermarks(allowed_lateness_ms=1000, idle_s=0.2)
    w.expect(["a", "b"])
    w.observe("a", 1_790_000_900_000)  # a backlog: partition a comes first, far ahead of b
    assert w.watermark() == NEVER  # b's older events must not be late
    w.observe("b", 1_790_000_100_000)
    assert w.watermark() == 1_790_000_100_000 - 1000
    late = Watermarks(allowed_lateness_ms=0, idle_s=0.05)
    late.expect(["a", "b"])
    late.observe("a", 5_000)
    time.sleep(0.1)  # b stays silent: after idle_s it no longer holds the watermark
    late.observe("a", 6_000)
    assert late.watermark() == 6_000
