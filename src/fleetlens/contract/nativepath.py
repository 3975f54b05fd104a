"""The native decode path: the ``fleetlens_native`` extension (Rust, ``native/``) parses lines.

It reads the clean-looking lines of a decode call with serde_json into the raw shape
(``raw.py``), on several threads and without the GIL, and hands back ("punts") every line it
cannot decode exactly as the reference path would: not an object, a wrong JSON type, a duplicate
key, a number that may have lost precision, bad JSON of any kind. Those lines go to the
reference path, which gives the verdict and the reason, so this path never accepts what the
reference rejects (the differential tests hold them equal). The columns come back as the
extension's own memory (``fleetlens_native.Buffer``, read-only, exported through the buffer
protocol), which ``pyarrow.py_buffer`` wraps without copying.

``scripts/setup.sh`` builds the extension from ``native/`` (cargo, crates.io). Where it is not
installed, ``AVAILABLE`` is False and the decoder uses the Arrow fast path (``fastpath.py``).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from fleetlens.contract.lines import LineIndex
from fleetlens.contract.raw import ATTRS_SCHEMA, RAW_SCHEMA, RawBatch
from fleetlens.contract.schema import WIRE_TYPES

try:
    import fleetlens_native
except ImportError:  # not built here: the Arrow fast path takes over
    fleetlens_native = None

AVAILABLE = fleetlens_native is not None

_FIELDS = list(WIRE_TYPES.items())
_TYPES = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "int8": pa.int8(), "bool": pa.bool_()}
_LINES_PER_THREAD = 4096  # below this, one thread: starting threads costs more than it saves
_THREADS = max(1, min(os.cpu_count() or 1, 4))


def parse_lines(index: LineIndex, lines: np.ndarray) -> tuple[RawBatch, np.ndarray]:
    """Parse ``lines`` (sorted line indices) of ``index``; returns the batch and the punted lines."""
    lines = np.ascontiguousarray(lines, dtype=np.int64)
    threads = max(1, min(_THREADS, len(lines) // _LINES_PER_THREAD))
    parts = fleetlens_native.parse_lines(
        _FIELDS,
        index.buf,
        np.ascontiguousarray(index.starts[lines], dtype=np.int64).tobytes(),
        np.ascontiguousarray(index.ends[lines], dtype=np.int64).tobytes(),
        lines.tobytes(),
        threads,
    )
    batches = [RawBatch(_table(p["rows"], RAW_SCHEMA), _table(p["attrs"], ATTRS_SCHEMA)) for p in parts]
    punted = np.concatenate([np.frombuffer(p["punted"], dtype=np.int64) for p in parts]) if parts else lines[:0]
    return RawBatch.concat(batches), punted


def _table(columns: list, schema: pa.Schema) -> pa.Table:
    arrays = [_array(c) for c in columns]
    if [a.type for a in arrays] != schema.types:  # the extension and raw.py disagree: a build mismatch
        raise RuntimeError(f"fleetlens_native returned {[str(a.type) for a in arrays]}, expected {schema}")
    return pa.Table.from_arrays(arrays, schema=schema)


def _array(col: list) -> pa.Array:
    kind, length, nulls, validity, *values = col
    buffers = [None if validity is None else pa.py_buffer(validity), *map(pa.py_buffer, values)]
    return pa.Array.from_buffers(_TYPES[kind], length, buffers, null_count=nulls)
