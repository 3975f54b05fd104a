"""Split MQ payloads into lines without a Python object per line.

All payloads of one decode call are joined into one buffer; line boundaries, the message and
line number of every line, and a cheap classification (which lines may take the Arrow fast
path) are computed with numpy over the whole buffer. Python only touches the lines that look
unusual (blank, not ``{...}``, suspicious bytes), which are rare in real traffic.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Sequence

import numpy as np

BOM = b"\xef\xbb\xbf"
_BLANK_BYTES = b" \t\r"
# Lines longer than this, or with more nesting brackets than this, skip the Arrow fast path:
# its block reader needs a whole line per block, and its recursive parser crashes (SIGSEGV) on
# deeply nested input. The reference path (orjson) handles both safely.
MAX_FAST_LINE_BYTES = 1 << 19  # half the Arrow block size
MAX_FAST_BRACKETS = 256
_LONG_LINE_BYTES = 4096  # only lines at least this long are counted for brackets
_UTF8_LINES_ONE_BY_ONE = 16  # a bad range this small is checked line by line
# Bytes compared per numpy call when searching the buffer: one small mask reused instead of a mask
# as large as the buffer (tens of MB per decode call, twice), which doubled index_lines' peak memory.
_SCAN_BLOCK = 1 << 18
# Byte sequences that make a line take the reference path: "\u0000" could spell the private key
# the fast path renames ts to; an escaped quote before ts could make that rename hit a key that
# merely ends in `"ts`. (NaN/Infinity, which Arrow accepts, are caught after parsing instead:
# "Inf" is too common in text to screen for.) Both start with a backslash and are 6 bytes long,
# so one numpy pass over the (rare) backslashes finds them (``\\"ts": `` contains ``\\"ts":``).
_SUSPICIOUS = (b"\\u0000", b'\\"ts":')

# Line states.
FAST, SLOW, BLANK = 0, 1, 2


@dataclass
class LineIndex:
    """Where every line of a decode call is, and which path it takes.

    ``starts[i]:ends[i]`` are line ``i``'s bytes in ``buf`` (a trailing ``\\r`` excluded),
    ``message[i]`` is the payload index and ``line_no[i]`` the 0-based line inside it.
    ``state[i]`` is FAST (``{...}``, clean bytes), SLOW (anything else that is not blank) or
    BLANK (skipped).
    """

    buf: bytes
    starts: np.ndarray
    ends: np.ndarray
    message: np.ndarray
    line_no: np.ndarray
    state: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def raw(self, i: int) -> bytes:
        """The original bytes of line ``i`` without its terminator."""
        return self.buf[self.starts[i] : self.ends[i]]


def index_lines(payloads: Sequence[bytes]) -> LineIndex:
    """Join ``payloads`` and locate, attribute and classify every line."""
    if not len(payloads):
        none = np.empty(0, dtype=np.int64)
        return LineIndex(b"", none, none, none, none, np.empty(0, dtype=np.int8))
    buf = b"\n".join(payloads)  # any bytes-like payloads; no per-payload copy
    view = np.frombuffer(buf, dtype=np.uint8)
    newlines = find_byte(view, 0x0A)
    starts = np.concatenate(([0], newlines + 1)).astype(np.int64)
    ends = np.concatenate((newlines, [len(buf)])).astype(np.int64)
    if len(starts) == len(payloads):
        # The join's separators are the only newlines: line i is payload i (one event per message, the
        # common case). Skips sizing every payload, a Python call each (~35 ms per 200k payloads).
        message = np.arange(len(payloads), dtype=np.int64)
        line_no = np.zeros(len(payloads), dtype=np.int64)
    else:
        message, line_no = _attribute(payloads, len(buf), starts)

    # Drop a trailing "\r" (CRLF) from every line's extent.
    nonempty = ends > starts
    last = np.where(nonempty, view[np.maximum(ends - 1, 0)] if len(buf) else 0, 0)
    ends = ends - ((last == 0x0D) & nonempty)

    length = ends - starts
    safe_start = np.minimum(starts, max(len(buf) - 1, 0))
    safe_end = np.maximum(ends - 1, 0)
    if len(buf):
        fast = (length >= 2) & (view[safe_start] == 0x7B) & (view[safe_end] == 0x7D)
    else:
        fast = np.zeros(len(starts), dtype=bool)
    fast &= length <= MAX_FAST_LINE_BYTES
    state = np.where(fast, FAST, SLOW).astype(np.int8)

    for i in np.flatnonzero(~fast):
        if not buf[starts[i] : ends[i]].strip(_BLANK_BYTES):
            state[i] = BLANK
    for i in np.flatnonzero(fast & (length >= _LONG_LINE_BYTES)):
        line = buf[starts[i] : ends[i]]
        if line.count(b"{") + line.count(b"[") > MAX_FAST_BRACKETS:
            state[i] = SLOW
    _mark_bad_utf8(buf, starts, ends, state)
    _mark_suspicious(buf, view, starts, state)
    return LineIndex(buf, starts, ends, message, line_no, state)


def _attribute(payloads: Sequence[bytes], size: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The payload index and the line number inside it of every line starting at ``starts``."""
    sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=len(payloads))
    if int(sizes.sum()) + max(len(payloads) - 1, 0) != size:  # a payload whose len is not its size
        payloads = [bytes(p) for p in payloads]
        sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=len(payloads))
    msg_starts = np.concatenate(([0], np.cumsum(sizes + 1)[:-1]))
    message = np.searchsorted(msg_starts, starts, side="right") - 1
    first_line = np.searchsorted(starts, msg_starts)
    return message, np.arange(len(starts), dtype=np.int64) - first_line[message]


def find_byte(view: np.ndarray, byte: int) -> np.ndarray:
    """Sorted offsets (int64) of ``byte`` in the uint8 array ``view``, scanned in blocks."""
    if len(view) <= _SCAN_BLOCK:
        return np.flatnonzero(view == byte)
    mask = np.empty(_SCAN_BLOCK, dtype=bool)
    found = []
    for lo in range(0, len(view), _SCAN_BLOCK):
        block = view[lo : lo + _SCAN_BLOCK]
        hits = np.flatnonzero(np.equal(block, byte, out=mask[: len(block)]))
        if len(hits):
            found.append(hits + lo)
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def _mark_suspicious(buf: bytes, view: np.ndarray, starts: np.ndarray, state: np.ndarray) -> None:
    """Send every line containing one of ``_SUSPICIOUS`` to the reference path."""
    if b"\\" not in buf:  # one memchr pass, no allocation: the usual case
        return
    slash = find_byte(view, 0x5C)
    width = len(_SUSPICIOUS[0])
    slash = slash[slash <= len(view) - width]
    if not len(slash):
        return
    window = view[slash[:, None] + np.arange(1, width)]
    hit = np.zeros(len(slash), dtype=bool)
    for needle in _SUSPICIOUS:
        hit |= (window == np.frombuffer(needle[1:], dtype=np.uint8)).all(axis=1)
    if hit.any():
        lines = np.searchsorted(starts, slash[hit], side="right") - 1
        state[lines[state[lines] == FAST]] = SLOW


def _mark_bad_utf8(buf: bytes, starts: np.ndarray, ends: np.ndarray, state: np.ndarray) -> None:
    """Send every line with invalid UTF-8 to the reference path (Arrow does not check).

    One decode of the whole buffer in the usual case; otherwise the line range is bisected until
    the bad lines are found. (Decoding "the rest of the buffer" again after each bad line was
    quadratic: 100k hostile lines took minutes.) Bytes decoded stay within ~log2(lines) × the
    buffer, whatever the input.
    """
    if buf.isascii():  # ASCII is valid UTF-8; checked ~8x faster than a decode, without a copy
        return
    view = memoryview(buf)
    todo = [(0, len(starts))]  # line ranges [lo, hi) not yet known to be valid
    while todo:
        lo, hi = todo.pop()
        try:
            codecs.utf_8_decode(view[int(starts[lo]) : int(ends[hi - 1])], "strict", True)
            continue
        except UnicodeDecodeError:
            pass
        if hi - lo <= _UTF8_LINES_ONE_BY_ONE:
            for i in range(lo, hi):
                try:
                    codecs.utf_8_decode(view[int(starts[i]) : int(ends[i])], "strict", True)
                except UnicodeDecodeError:
                    state[i] = SLOW
            continue
        mid = (lo + hi) // 2
        todo += [(mid, hi), (lo, mid)]
