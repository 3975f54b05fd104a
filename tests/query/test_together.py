"""query/common.together: the independent queries of one answer run side by side, results in call order."""

from __future__ import annotations

import time

import pytest

from fleetlens.query.common import Limits, run, together


def _sleep_then(store, seconds: float, value: int):
    return lambda: run(store, f"SELECT {value} AS v FROM (SELECT sleep({seconds}))", {}, Limits()).column("v")[0].as_py()


def test_queries_run_side_by_side_and_answer_in_call_order(loaded):
    t0 = time.perf_counter()
    assert together(_sleep_then(loaded, 0.4, 1), _sleep_then(loaded, 0.4, 2), _sleep_then(loaded, 0.4, 3)) == [1, 2, 3]
    assert time.perf_counter() - t0 < 1.0  # one after another: 1.2 s


def test_an_error_is_raised_after_every_query_finished(loaded):
    finished = []

    def slow():
        time.sleep(0.3)
        finished.append("slow")
        return 1

    def failing():
        run(loaded, "SELECT no_such_column FROM events", {}, Limits())

    with pytest.raises(Exception, match="no_such_column"):
        together(failing, slow)
    assert finished == ["slow"]  # the failure in the caller's thread waited for the other query
    with pytest.raises(Exception, match="no_such_column"):
        together(slow, failing)
    assert finished == ["slow", "slow"]
