"""Small hand-built Arrow tables of the contract's decoded schemas."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from fleetlens.contract.schema import EVENTS_SCHEMA, METRICS_SCHEMA, REJECTS_SCHEMA

T0 = dt.datetime(2026, 11, 22, 10, 15, 0, 123000, tzinfo=dt.timezone.utc)
LONG_MESSAGE = ("x" * 1023 + "\n") * 64  # 64 KiB


def _row(event_id: str, ts: dt.datetime, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {f.name: "" for f in EVENTS_SCHEMA if f.type == pa.string()}
    row.update({"line": None, "duration_ms": None, "amount": None, "attempt": None, "attrs": []})
    row.update(event_id=event_id, ts=ts, service="payment", **fields)
    return row


def events_table(n: int = 3, prefix: str = "ev", start: dt.datetime = T0) -> pa.Table:
    """``n`` events: a long log line, a unicode business event with attrs, and plain logs."""
    rows = []
    for i in range(n):
        ts = start + dt.timedelta(milliseconds=i)
        if i % 3 == 0:
            rows.append(_row(f"{prefix}-{i}", ts, kind="log", level="error", event_type="exception", message=LONG_MESSAGE,
                             action_id=f"act-{i}", line=61, duration_ms=None, attrs=[("truncated", "70000")]))
        elif i % 3 == 1:
            rows.append(_row(f"{prefix}-{i}", ts, kind="business", operation="buy", action_id=f"act-{i}", user_id="üser-字",
                             order_id="o-1", amount=12.5, currency="EUR", outcome="success", attempt=1,
                             attrs=[("coupon", "ÉTÉ-2026"), ("emoji", "🛒")]))
        else:
            rows.append(_row(f"{prefix}-{i}", ts, kind="log", level="info", event_type="http_request",
                             message="GET /cart took 12 ms — ok", duration_ms=12.0))
    return pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA)


def metrics_table() -> pa.Table:
    """Two metric samples."""
    return pa.Table.from_pylist(
        [
            {"event_id": "m-1", "ts": T0, "service": "cart", "app": "", "host": "h1", "pod": "", "container": "", "node": "",
             "name": "cpu_percent", "value": 41.5, "unit": "%", "attrs": []},
            {"event_id": "m-2", "ts": T0, "service": "cart", "app": "shop", "host": "h2", "pod": "p", "container": "c",
             "node": "n", "name": "mem_bytes", "value": 1.5e9, "unit": "B", "attrs": [("zone", "eu-1")]},
        ],
        schema=METRICS_SCHEMA,
    )


def rejects_table() -> pa.Table:
    """Two rejected lines, one with non-UTF-8 bytes."""
    return pa.Table.from_pylist(
        [
            {"received_at": T0, "stream": "fleet.events", "partition": 0, "position": "1-0", "line": 0, "event_id": "",
             "field": "payload", "reason": "not a JSON object", "raw": b"\xff\xfe{oops"},
            {"received_at": T0, "stream": "fleet.events", "partition": 0, "position": "1-0", "line": 2, "event_id": "e'9",
             "field": "ts", "reason": "ts: 'yesterday' is not RFC 3339", "raw": b'{"ts":"yesterday"}'},
        ],
        schema=REJECTS_SCHEMA,
    )
