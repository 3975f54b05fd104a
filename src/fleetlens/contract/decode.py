"""Decode MQ payloads (one JSON event or NDJSON) into validated Arrow tables and rejections.

How (see ``docs/events.md``, "How decoding works"):

1. ``lines``: all payloads are joined into one buffer and split into lines with numpy; lines
   that are blank are skipped, lines that look unusual (not ``{...}``, bad UTF-8, a BOM, very
   long or deeply nested) are marked for the reference path.
2. ``nativepath``: the remaining lines are parsed by the ``fleetlens_native`` extension
   (serde_json, several threads, no GIL); every line it is not sure of is handed back for the
   reference path. Where the extension is not installed, ``fastpath`` does this instead: Arrow's
   JSON reader with an explicit, type-strict schema over large chunks; a chunk with any surprise
   is bisected and retried; chunks of at most ``MIN_FAST_LINES`` lines go to
3. ``refpath``: ``orjson.loads`` per line with JSON-type checks in Python.
4. ``validate``: one vectorized pass of the contract's rules over the rows of both paths.

Nothing raises out of ``decode_payloads`` for bad input: every bad line becomes a ``Rejection``.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from fleetlens.contract import fastpath, nativepath, refpath
from fleetlens.contract.lines import FAST, SLOW, LineIndex, index_lines
from fleetlens.contract.raw import RawBatch
from fleetlens.contract.schema import EVENTS_SCHEMA, METRICS_SCHEMA
from fleetlens.contract.validate import validate

MIN_FAST_LINES = 64  # a failing chunk this small is decoded line by line
DENSE_STREAK = 3  # bisection levels in a row where both halves fail: bad lines are dense, decode line by line
DENSE_LINES = 256  # ... or already once, in a range this small
MAX_CHUNK_BYTES = 32 << 20  # fast-path chunk size: bounds memory and the cost of one bisection


@dataclass(frozen=True)
class Rejection:
    """One rejected line, with enough to dead-letter it."""

    message: int  #: index into the payloads given to ``decode_payloads``
    line: int  #: 0-based line inside that payload (blank lines count)
    event_id: str  #: "" when not known (or not a valid event id)
    field: str  #: the field the reason is about, or "payload" when the line is not a JSON object
    reason: str  #: human-readable: which field, what was wrong
    raw: bytes  #: the line's original bytes, without the line terminator


@dataclass
class Decoded:
    """The result of decoding a batch of payloads."""

    events: pa.Table  #: logs and business events, ``EVENTS_SCHEMA``, in input order
    metrics: pa.Table  #: metric samples, ``METRICS_SCHEMA``, in input order
    rejections: list[Rejection]  #: in input order


# Which path parses the clean-looking lines: the native extension, Arrow's reader, or none
# (everything through the reference path).
NATIVE, ARROW, REFERENCE = "native", "arrow", "reference"


FAST_PATH = NATIVE if nativepath.AVAILABLE else ARROW  #: what ``decode_payloads`` uses here
#: What a role logs at start when the native extension is missing.
ARROW_FALLBACK_WARNING = ("the native decoder is not installed (scripts/setup.sh builds it from native/ with cargo): "
                          "decoding on the slower Arrow path")


@contextmanager
def fast_path(path: str) -> Iterator[None]:
    """Make ``decode_payloads`` use ``path`` (``NATIVE`` or ``ARROW``) inside the block, in every
    thread: for benchmarks that compare the two in one run."""
    global FAST_PATH
    if path not in (NATIVE, ARROW) or (path == NATIVE and not nativepath.AVAILABLE):
        raise ValueError(f"fast path {path!r} is not available here")
    previous, FAST_PATH = FAST_PATH, path
    try:
        yield
    finally:
        FAST_PATH = previous


def decode_payloads(payloads: Sequence[bytes]) -> Decoded:
    """Decode and validate MQ payloads; join many messages into one call for speed."""
    return _decode(payloads, FAST_PATH)


def decode_payloads_native(payloads: Sequence[bytes]) -> Decoded:
    """``decode_payloads`` with the native extension as the fast path; RuntimeError when it is
    not installed (for tests and comparisons)."""
    if not nativepath.AVAILABLE:
        raise RuntimeError("the fleetlens_native extension is not installed: run scripts/setup.sh")
    return _decode(payloads, NATIVE)


def decode_payloads_arrow(payloads: Sequence[bytes]) -> Decoded:
    """``decode_payloads`` with Arrow's JSON reader as the fast path (used when the native
    extension is not installed; for tests and comparisons)."""
    return _decode(payloads, ARROW)


def decode_payloads_reference(payloads: Sequence[bytes]) -> Decoded:
    """``decode_payloads`` using only the per-line reference path (for tests and comparisons)."""
    return _decode(payloads, REFERENCE)


def _decode(payloads: Sequence[bytes], path: str) -> Decoded:
    try:
        index = index_lines(payloads)
        with _gc_paused():
            raw = _parse(index, path)
        if not _sorted(raw.rows.column("_row").to_numpy()):
            raw.rows = raw.rows.sort_by("_row")
        result = validate(raw)
    except Exception as exc:  # a decoder bug must not stop ingest: reject the batch instead
        return _all_rejected(payloads, exc)
    found = [(r.row, r.event_id, r.field, r.reason) for r in raw.rejected] + result.rejected
    found.sort(key=lambda r: r[0])
    rejections = [
        Rejection(int(index.message[row]), int(index.line_no[row]), eid, field, reason, index.raw(row))
        for row, eid, field, reason in found
    ]
    return Decoded(result.events, result.metrics, rejections)


def _parse(index: LineIndex, path: str) -> RawBatch:
    slow = np.flatnonzero(index.state == SLOW)
    fast_lines = np.flatnonzero(index.state == FAST)
    if path == REFERENCE:
        return refpath.parse_lines(index, np.sort(np.concatenate((slow, fast_lines))).tolist())
    if path == NATIVE:
        batches = []
        for lo, hi in _chunks(index, fast_lines):
            batch, punted = nativepath.parse_lines(index, fast_lines[lo:hi])
            batches.append(batch)
            slow = np.concatenate((slow, punted))
        return RawBatch.concat([*batches, refpath.parse_lines(index, np.sort(slow).tolist())])
    batches = [refpath.parse_lines(index, slow.tolist())]
    for lo, hi in _chunks(index, fast_lines):
        batches += _parse_fast(index, fast_lines[lo:hi])
    return RawBatch.concat(batches)


def _chunks(index: LineIndex, lines: np.ndarray) -> Iterator[tuple[int, int]]:
    """Split ``lines`` into consecutive ranges of about MAX_CHUNK_BYTES of input."""
    if not len(lines):
        return
    ends = index.ends[lines]
    cuts = np.searchsorted(ends, np.arange(index.starts[lines[0]] + MAX_CHUNK_BYTES, ends[-1], MAX_CHUNK_BYTES))
    bounds = [0, *np.unique(cuts).tolist(), len(lines)]
    for lo, hi in zip(bounds, bounds[1:]):
        if hi > lo:
            yield lo, hi


def _parse_fast(index: LineIndex, lines: np.ndarray) -> list[RawBatch]:
    """Fast-parse ``lines`` (sorted FAST line indices), bisecting on failure."""
    result = _try_fast(index, lines)
    return [result] if result is not None else _bisect(index, lines)


def _bisect(index: LineIndex, lines: np.ndarray, streak: int = 0) -> list[RawBatch]:
    """``lines`` failed the fast path as a whole: retry its halves, down to the reference path.

    ``streak`` counts the enclosing ranges whose halves both failed too. When that keeps
    happening, bad lines are dense (hostile input): bisecting further would re-read the same
    bytes at every level, so the range goes to the reference path at once (100k hostile lines
    among 50k good: 20 s → 5-10 s).
    """
    if len(lines) <= MIN_FAST_LINES:
        return [refpath.parse_lines(index, lines.tolist())]
    mid = len(lines) // 2
    halves = (lines[:mid], lines[mid:])
    results = [_try_fast(index, half) for half in halves]
    streak = streak + 1 if results[0] is None and results[1] is None else 0
    if streak >= DENSE_STREAK or (streak and len(lines) <= DENSE_LINES):
        return [refpath.parse_lines(index, lines.tolist())]
    out: list[RawBatch] = []
    for half, result in zip(halves, results):
        out += [result] if result is not None else _bisect(index, half, streak)
    return out


def _try_fast(index: LineIndex, lines: np.ndarray) -> RawBatch | None:
    first, last = int(lines[0]), int(lines[-1])
    lo, hi = int(index.starts[first]), int(index.ends[last])
    data: bytes | bytearray = index.buf[lo:hi]
    others = np.flatnonzero(index.state[first : last + 1] == SLOW) + first
    if len(others):  # blank out slow lines between fast ones; Arrow skips blank lines
        data = bytearray(data)
        for i in others:
            s, e = int(index.starts[i]) - lo, int(index.ends[i]) - lo
            data[s:e] = b" " * (e - s)
    return fastpath.parse_chunk(data, pa.array(lines, pa.int64()), _guess_ts_mode(index, lines))


TS_SAMPLE = 16  # lines looked at to guess how a chunk spells ts


def _guess_ts_mode(index: LineIndex, lines: np.ndarray) -> str:
    """"str" or "int" when a sample of ``lines`` spells ``ts`` only that way, else "split".

    Only a guess: a wrong one costs a second read of the chunk, never a wrong result.
    """
    seen = set()
    for i in lines[np.linspace(0, len(lines) - 1, min(TS_SAMPLE, len(lines))).astype(np.int64)]:
        line = index.raw(int(i))
        at = line.find(b'"ts":')
        if at < 0:
            return "split"
        value = line[at + 5 : at + 7].lstrip(b" ")[:1]
        seen.add("str" if value == b'"' else "int" if value in b"-0123456789" and value else "?")
        if len(seen) > 1:
            return "split"
    return seen.pop() if seen and "?" not in seen else "split"


def _sorted(rows: np.ndarray) -> bool:
    return bool(len(rows) < 2 or np.all(rows[1:] > rows[:-1]))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: decoding allocates many short-lived acyclic objects."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _all_rejected(payloads: Sequence[bytes], exc: Exception) -> Decoded:
    reason = f"internal decoder error: {type(exc).__name__}: {str(exc)[:300]}"
    return Decoded(
        EVENTS_SCHEMA.empty_table(),
        METRICS_SCHEMA.empty_table(),
        [Rejection(i, 0, "", "payload", reason, bytes(p)) for i, p in enumerate(payloads)],
    )
