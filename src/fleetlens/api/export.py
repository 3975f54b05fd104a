"""Event lists as CSV or NDJSON downloads."""

from __future__ import annotations

import io

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from fleetlens.query.common import rows

FORMATS = ("json", "csv", "ndjson")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


def to_csv(table: pa.Table) -> bytes:
    """A header line and one line per row (RFC 4180 quoting)."""
    out = io.BytesIO()
    if table.num_columns:
        pacsv.write_csv(table, out)
    return out.getvalue()


def to_ndjson(table: pa.Table) -> bytes:
    """One JSON object per row and line, times as ISO 8601."""
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rows(table))
