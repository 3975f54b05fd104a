"""param_text: Python values as the text chDB binds to {name:Type} placeholders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from fleetlens.store.params import param_text

NASTY = ["plain", "it's", "back\\slash", "\\'", "tab\there", "new\nline", "cr\r", "nul\0", "", "'; DROP TABLE x; --", "ünï 字 🛒"]


def test_scalars():
    assert param_text(None) == "\\N"
    assert param_text(True) == "1"
    assert param_text(3) == "3"
    assert param_text(1.5) == "1.5"
    assert param_text(Decimal("2.50")) == "2.50"
    assert param_text(dt.date(2026, 1, 2)) == "2026-01-02"
    aware = dt.datetime(2026, 1, 2, 4, 4, 5, 678000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert param_text(aware) == "2026-01-02 03:04:05.678000"
    assert param_text("a\tb\\c") == "a\\tb\\\\c"
    assert param_text(["a'b", None, 1]) == "['a\\'b',NULL,1]"
    assert param_text({"k": 1}) == "{'k':1}"
    with pytest.raises(TypeError):
        param_text(object())


@pytest.mark.parametrize("value", NASTY)
def test_strings_come_back_unchanged(store, value):
    assert store.query_scalar("SELECT {v:String}", {"v": value}) == value


def test_arrays_and_maps_come_back_unchanged(store):
    assert store.query_scalar("SELECT {v:Array(String)}", {"v": NASTY}) == NASTY
    assert dict(store.query_scalar("SELECT {v:Map(String, String)}", {"v": {"k'": "v\t", "ü": "\\"}})) == {"k'": "v\t", "ü": "\\"}
    ts = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
    assert store.query_scalar("SELECT {t:DateTime64(3, 'UTC')}", {"t": ts}) == ts
