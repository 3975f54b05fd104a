"""Query lanes: lookups run before scans, each lane's threads at the nice value settings give (query/common.py: run)."""

from __future__ import annotations

import pytest

from fleetlens.query.common import LOOKUP, SCAN, Limits, run

SETTINGS_SQL = "SELECT getSetting('priority') AS priority, getSetting('os_thread_priority') AS nice"


def in_effect(store, lane, limits=Limits()):
    return run(store, SETTINGS_SQL, {}, limits, lane=lane).to_pylist()[0]


def test_lookups_take_precedence_over_scans_and_each_lane_runs_at_its_nice_value(loaded):
    store = loaded
    assert in_effect(store, LOOKUP) == {"priority": 1, "nice": -10}
    assert in_effect(store, LOOKUP, Limits(lookup_nice=0)) == {"priority": 1, "nice": 0}
    assert in_effect(store, SCAN) == {"priority": 2, "nice": -10}
    assert in_effect(store, SCAN, Limits(scan_nice=0)) == {"priority": 2, "nice": 0}
    assert in_effect(store, SCAN, Limits(scan_nice=19)) == {"priority": 2, "nice": 19}
    # the connection's own settings are untouched afterwards
    assert store.query_arrow(SETTINGS_SQL).to_pylist()[0] == {"priority": 0, "nice": 0}
    with pytest.raises(ValueError):
        run(store, SETTINGS_SQL, {}, Limits(), lane="fast")
