"""Hostile input at scale: decoding time stays proportional to the input, whatever the bad lines."""

from __future__ import annotations

import time

import pytest

from fleetlens.contract.decode import decode_payloads, decode_payloads_reference

from .conftest import FAST_DECODERS, as_comparable


def _line(i: int) -> bytes:
    return (b'{"event_id":"e%d","ts":1795000000000,"kind":"metric","service":"node","name":"cpu","value":1}' % i)


def test_many_bad_utf8_lines_decode_in_linear_time() -> None:
    """Regression: each bad UTF-8 line re-decoded the rest of the buffer (20k lines: minutes; now well under a second)."""
    lines = [_line(i) if i % 2 else _line(i).replace(b"cpu", b"c\xffu") for i in range(20_000)]
    started = time.monotonic()
    decoded = decode_payloads([b"\n".join(lines)])
    took = time.monotonic() - started
    assert decoded.metrics.num_rows == 10_000 and len(decoded.rejections) == 10_000
    assert {r.line % 2 for r in decoded.rejections} == {0}
    assert took < 10, f"{took:.1f}s"


@pytest.mark.parametrize("path", FAST_DECODERS)
def test_dense_bad_lines_take_the_reference_path_with_the_same_result(path: str) -> None:
    """Bad lines on every other line: bisection stops early, the result equals the reference path's."""
    lines = [_line(i) if i % 2 else b'{"event_id":"b%d","ts":true}' % i for i in range(20_000)]
    payloads = [b"\n".join(lines[i : i + 100]) for i in range(0, len(lines), 100)]
    started = time.monotonic()
    fast = FAST_DECODERS[path](payloads)
    took = time.monotonic() - started
    assert as_comparable(fast) == as_comparable(decode_payloads_reference(payloads))
    assert len(fast.rejections) == 10_000 and took < 20, f"{took:.1f}s"
