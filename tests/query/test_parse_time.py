"""Time parameters: every spelling is a time or a 400-style QueryError naming the parameter, never a crash."""

from __future__ import annotations

import pytest

from fleetlens.query.common import QueryError, parse_time


@pytest.mark.parametrize("text", ["5\x1c", " 1795000000000 ", "1795000000000\x1f"])
def test_epoch_ms_with_surrounding_separators_parses(text):
    assert parse_time("start", text) is not None


@pytest.mark.parametrize("text", ["5\x1cx", "Õâ", "99999999999999999"])
def test_garbage_is_a_query_error_naming_the_parameter(text):
    with pytest.raises(QueryError) as err:
        parse_time("start", text)
    assert err.value.param == "start"
