"""The detector and the archiver as chaos roles: SIGKILLed at random points, then judged by exact counts.

Small variants of ``fleetlens chaos sigkill --role detect|archive`` (the 20-kill runs are recorded
in docs/reliability.md).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleetlens.chaos import scenarios
from fleetlens.chaos.rig import Rig
from fleetlens.chaos.roles import role


@pytest.mark.slow
def test_detector_killed_mid_scenarios_stores_each_alert_once(tmp_path):
    rig = Rig.with_redis(tmp_path)
    try:
        # the first three scenarios of the role's traffic (provider outage, crash, burst) fit in 360k events; 40k more let the watermark pass the burst
        result = scenarios.sigkill_cycles(rig, role("detect"), cycles=2, events=400_000)
    finally:
        rig.close()
    print(result.summary())
    assert result.passed, result.summary()
    assert result.produced == result.figures["scenario outputs (each once in both)"] == 4


@pytest.mark.slow
def test_archiver_killed_mid_run_loses_and_duplicates_no_row(tmp_path):
    rig = Rig.with_redis(tmp_path)
    try:
        result = scenarios.sigkill_cycles(rig, replace(role("archive"), history_days=8), cycles=2, events=5_000)
    finally:
        rig.close()
    print(result.summary())
    assert result.passed, result.summary()
    assert result.figures["day manifests after the clean run"] > 0
