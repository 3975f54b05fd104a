"""The raw columnar shape both decode paths produce and the validator consumes.

A raw batch is what the JSON said, type-checked but not yet validated or normalized:

* ``rows``: one row per JSON object line, ``_row`` (the line's index in the decode call), one
  column per contract field typed by its wire type (string / int64 / float64), and ``ts`` split
  into ``ts_int`` (epoch ms) and ``ts_str`` (the RFC 3339 text). Null means absent (or JSON null).
* ``attrs``: one row per attribute in long form: the line, the key, where it came from (``src``:
  the ``attrs`` object or an unknown top-level field) and the value in the slot of its JSON type.
* ``rejected``: lines the path itself rejected (not a JSON object, a field of the wrong JSON type).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from fleetlens.contract.schema import WIRE_TYPES

_ARROW_OF_WIRE = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64()}

# Contract fields with a plain column (everything except ts and attrs), in WIRE_TYPES order.
SCALAR_FIELDS: dict[str, pa.DataType] = {
    name: _ARROW_OF_WIRE[wire] for name, wire in WIRE_TYPES.items() if wire in _ARROW_OF_WIRE
}

RAW_SCHEMA = pa.schema(
    [
        pa.field("_row", pa.int64()),
        pa.field("ts_int", pa.int64()),
        pa.field("ts_str", pa.string()),
        *(pa.field(name, typ) for name, typ in SCALAR_FIELDS.items()),
    ]
)

SRC_ATTRS = 1  # from the event's "attrs" object
SRC_TOP = 2  # an unknown top-level field

ATTRS_SCHEMA = pa.schema(
    [
        pa.field("_row", pa.int64()),
        pa.field("key", pa.string()),
        pa.field("src", pa.int8()),
        pa.field("s", pa.string()),
        pa.field("i", pa.int64()),
        pa.field("f", pa.float64()),
        pa.field("b", pa.bool_()),
    ]
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class PathRejection:
    """A line a decode path rejected before validation (not an object, wrong JSON type)."""

    row: int
    event_id: str
    field: str
    reason: str


@dataclass
class RawBatch:
    """The raw output of a decode path for some lines (see the module docstring)."""

    rows: pa.Table
    attrs: pa.Table
    rejected: list[PathRejection] = field(default_factory=list)

    @staticmethod
    def concat(batches: list["RawBatch"]) -> "RawBatch":
        """One batch holding the rows of ``batches`` in their order."""
        if not batches:
            return RawBatch(RAW_SCHEMA.empty_table(), ATTRS_SCHEMA.empty_table())
        return RawBatch(
            pa.concat_tables([b.rows for b in batches]),
            pa.concat_tables([b.attrs for b in batches]),
            [r for b in batches for r in b.rejected],
        )
