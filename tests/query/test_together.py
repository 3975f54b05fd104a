"""query/common.together: the independent queries of one answer run side by side, results in call order."""

from __future__ import annotations

import time

import pytest

from fleetlens.query.common import Limits, run, together


def test_queries_run_side_by_side_and_answer_in_call_order(loaded):
    spans = []

    def sleep_then(value: int):
        def call():
            started = time.monotonic()
            answer = run(loaded, f"SELECT {value} AS v FROM (SELECT sleep(0.4))", {}, Limits()).column("v")[0].as_py()
            spans.append((started, time.monotonic()))
            return answer
        return call

    assert together(sleep_then(1), sleep_then(2), sleep_then(3)) == [1, 2, 3]
    # every query started before any finished: they ran at the same time (one after another, none would)
    assert max(start for start, _ in spans) < min(end for _, end in spans)


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
