"""Query parameters as ClickHouse text, for chDB.

Both back ends bind ``{name:Type}`` placeholders on the server side, so user input never becomes
SQL. clickhouse-connect serializes Python values itself; chDB wants each value as the text
ClickHouse parses for the placeholder's type: scalars TSV-escaped (``\\`` for a backslash, ``\\t``
for a tab), arrays, tuples and maps as literals with quoted elements (``['a\\'b']``).
:func:`param_text` produces it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"})


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _datetime_text(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def _nested(value: Any) -> str:
    """A value inside an array/tuple/map: strings and dates quoted, like a SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, bytes):
        return _quoted(value.decode("utf-8", "surrogateescape"))
    if isinstance(value, (dt.datetime, dt.date)):
        return _quoted(_datetime_text(value) if isinstance(value, dt.datetime) else value.isoformat())
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_nested(k)}:{_nested(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "(" + ",".join(_nested(v) for v in value) + ")"
    if isinstance(value, (list, set, frozenset)):
        return "[" + ",".join(_nested(v) for v in value) + "]"
    raise TypeError(f"cannot bind a {type(value).__name__} as a query parameter")


def param_text(value: Any) -> str:
    """The text chDB parses for a ``{name:Type}`` query parameter holding ``value``.

    Supports None (``\\N``), str, bytes, bool, int, float, Decimal, date, datetime (aware ones are
    converted to UTC), and list/tuple/set/dict of those.
    """
    if value is None:
        return "\\N"
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "surrogateescape")
    elif isinstance(value, dt.datetime):
        text = _datetime_text(value)
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        # Composite values are parsed as quoted literals, not TSV: no second escaping layer.
        return _scalar(value)
    return text.translate(_TSV_ESCAPES)


def params_text(params: Mapping[str, Any] | None) -> dict[str, str]:
    """:func:`param_text` of every value of ``params``."""
    return {k: param_text(v) for k, v in (params or {}).items()}
