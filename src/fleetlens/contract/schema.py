"""What the contract's fields are on the wire, and the Arrow shape of a decoded, valid event.

The wire types drive type checking in the decoder; the decoded schemas are what ingest inserts
into the store (``store/``) and what the detector consumes. A field absent on the wire is ``""``
for strings and null for numbers in the decoded tables, so the store never sees a null string.
"""

from __future__ import annotations

import pyarrow as pa

CONTRACT_VERSION = 1

KINDS = ("log", "metric", "business")
LEVELS = ("debug", "info", "warn", "error")
LEVEL_ALIASES = {"warning": "warn"}
OPERATIONS = ("page_view", "reserve", "cancel_reservation", "buy", "refund", "payment_attempt")
OUTCOMES = ("success", "failure")

MAX_EVENT_ID_CHARS = 64
MAX_MESSAGE_BYTES = 64 * 1024
MAX_ATTR_KEY_CHARS = 128

# JSON type of every contract field on the wire. "string": a JSON string; "integer": a JSON
# integer (not a bool, not 1.0); "number": integer or float (not a bool); "ts": an RFC 3339
# string or integer epoch milliseconds; "attrs": an object of string -> string/number/bool.
WIRE_TYPES: dict[str, str] = {
    "event_id": "string",
    "ts": "ts",
    "kind": "string",
    "service": "string",
    "app": "string",
    "host": "string",
    "pod": "string",
    "container": "string",
    "node": "string",
    "attrs": "attrs",
    # log
    "level": "string",
    "event_type": "string",
    "message": "string",
    "action_id": "string",
    "logger": "string",
    "source_file": "string",
    "line": "integer",
    "duration_ms": "number",
    "user_id": "string",
    # business
    "operation": "string",
    "session_id": "string",
    "page": "string",
    "order_id": "string",
    "amount": "number",
    "currency": "string",
    "provider": "string",
    "attempt": "integer",
    "outcome": "string",
    "error_code": "string",
    # metric
    "name": "string",
    "value": "number",
    "unit": "string",
}

_ENVELOPE = [
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("ts", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("service", pa.string(), nullable=False),
    pa.field("app", pa.string(), nullable=False),
    pa.field("host", pa.string(), nullable=False),
    pa.field("pod", pa.string(), nullable=False),
    pa.field("container", pa.string(), nullable=False),
    pa.field("node", pa.string(), nullable=False),
]
ATTRS_TYPE = pa.map_(pa.string(), pa.string())

# Logs and business events share one table: a trace by action_id reads one table.
EVENTS_SCHEMA = pa.schema(
    [
        _ENVELOPE[0],
        _ENVELOPE[1],
        pa.field("kind", pa.string(), nullable=False),  # "log" | "business"
        *_ENVELOPE[2:],
        pa.field("level", pa.string(), nullable=False),  # "" for business
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("action_id", pa.string(), nullable=False),
        pa.field("logger", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line", pa.int64()),
        pa.field("duration_ms", pa.float64()),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("operation", pa.string(), nullable=False),  # "" for logs
        pa.field("page", pa.string(), nullable=False),
        pa.field("order_id", pa.string(), nullable=False),
        pa.field("amount", pa.float64()),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("attempt", pa.int64()),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("error_code", pa.string(), nullable=False),
        pa.field("attrs", ATTRS_TYPE, nullable=False),
    ]
)

METRICS_SCHEMA = pa.schema(
    [
        *_ENVELOPE,
        pa.field("name", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("unit", pa.string(), nullable=False),
        pa.field("attrs", ATTRS_TYPE, nullable=False),
    ]
)

# One row per rejected line: what went to the dead-letter stream, also kept in the store.
REJECTS_SCHEMA = pa.schema(
    [
        pa.field("received_at", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("stream", pa.string(), nullable=False),  # topic or stream key
        pa.field("partition", pa.int32(), nullable=False),  # Kafka partition; 0 for Redis
        pa.field("position", pa.string(), nullable=False),  # Kafka offset or Redis entry id
        pa.field("line", pa.int32(), nullable=False),  # 0-based line in the payload
        pa.field("event_id", pa.string(), nullable=False),  # "" when unknown
        pa.field("field", pa.string(), nullable=False),  # the field the reason is about, or "payload"
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.binary(), nullable=False),  # the line's original bytes
    ]
)
