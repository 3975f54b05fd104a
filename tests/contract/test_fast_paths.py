"""The fast path's shortcuts (ts spelling guess, screens, no-rejection shortcuts) never change a
result: every case is compared with the reference path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetlens.contract import decode as decode_mod
from fleetlens.contract import lines as lines_mod
from fleetlens.contract.decode import decode_payloads_arrow, decode_payloads_reference

from .conftest import FAST_DECODERS, as_comparable


def event(i: int, ts, **kw) -> bytes:
    e = {"event_id": f"e{i}", "ts": ts, "kind": "log", "service": "s", "level": "info",
         "event_type": "t", "message": "m", **kw}
    return json.dumps(e, separators=(",", ":")).encode()


def same_as_reference(payloads: list[bytes]):
    """Decodes by every fast path, each equal to the reference path; returns the Arrow path's result."""
    ref = as_comparable(decode_payloads_reference(payloads))
    for name, decode in FAST_DECODERS.items():
        fast = decode(payloads)
        assert as_comparable(fast) == ref, name
    return fast


ISO = "2026-11-20T09:00:00.123Z"
MS = 1_795_165_200_000


@pytest.mark.parametrize(
    "spell",
    [
        lambda i: ISO,  # all strings: "str" guess
        lambda i: MS + i,  # all integers: "int" guess
        lambda i: MS + i if i == 377 else ISO,  # one integer the sample misses: wrong guess
        lambda i: ISO if i == 377 else MS + i,  # one string the sample misses: wrong guess
        lambda i: ISO if i % 2 else MS + i,  # mixed: split
        lambda i: "not a time" if i == 377 else ISO,
        lambda i: None if i == 377 else ISO,
        lambda i: True if i == 377 else MS,
    ],
)
def test_ts_spellings(spell) -> None:
    lines = [event(i, spell(i)) for i in range(1000)]
    d = same_as_reference([b"\n".join(lines[k : k + 100]) for k in range(0, 1000, 100)])
    assert d.events.num_rows + len(d.rejections) == 1000


def test_ts_guess_with_spaces_and_attrs() -> None:
    lines = [json.dumps({"event_id": f"e{i}", "ts": ISO if i % 3 else MS, "kind": "metric", "service": "s",
                         "name": "n", "value": i, "attrs": {"ts": "x" if i % 2 else 5}}).encode() for i in range(300)]
    d = same_as_reference(lines)
    assert d.metrics.num_rows == 300


def test_key_ending_in_escaped_ts_is_screened() -> None:
    bad = b'{"event_id":"x","a\\"ts":"v","ts":"' + ISO.encode() + b'","kind":"log","service":"s","level":"info","event_type":"t","message":"m"}'
    d = same_as_reference([event(1, ISO), bad, event(2, ISO)])
    assert d.events.column("event_id").to_pylist() == ["e1", "x", "e2"]
    assert d.events.column("attrs").to_pylist()[1] == [('a"ts', "v")]


@pytest.mark.parametrize("size", [0, 1, lines_mod._SCAN_BLOCK - 1, lines_mod._SCAN_BLOCK, 3 * lines_mod._SCAN_BLOCK + 7])
def test_find_byte_is_flatnonzero_in_blocks(size: int) -> None:
    rng = np.random.default_rng(size)
    view = rng.integers(0, 4, size, dtype=np.uint8) * 40  # bytes 0, 40, 80, 120
    for at in (0, lines_mod._SCAN_BLOCK - 1, lines_mod._SCAN_BLOCK, size - 1):  # hits at the blocks' edges
        if 0 <= at < size:
            view[at] = 10
    found = lines_mod.find_byte(view, 10)
    assert found.dtype == np.int64
    assert found.tolist() == np.flatnonzero(view == 10).tolist()


def test_screened_lines_are_found_in_every_block_of_a_large_call() -> None:
    bad = b'{"event_id":"x%d","a\\"ts":"v","ts":"' + ISO.encode() + b'","kind":"log","service":"s","level":"info","event_type":"t","message":"m"}'
    lines = [event(i, ISO, message="m" * (1 + i % 97)) for i in range(8000)]  # ~1.2 MB: several scan blocks
    for k, at in enumerate(range(5, 8000, 1601)):
        lines[at] = bad % k
    d = same_as_reference([b"\n".join(lines[i : i + 100]) for i in range(0, 8000, 100)])
    assert d.events.num_rows == 8000


def test_guess_reads_each_chunk_once_when_right(monkeypatch) -> None:
    calls = []
    real = decode_mod.fastpath._parse_chunk

    def spy(data, rows, mode):
        calls.append(mode)
        return real(data, rows, mode)

    monkeypatch.setattr(decode_mod.fastpath, "_parse_chunk", spy)
    decode_payloads_arrow([event(i, ISO) for i in range(500)])
    decode_payloads_arrow([event(i, MS) for i in range(500)])
    assert calls == ["str", "int"]


@pytest.mark.parametrize("path", FAST_DECODERS)
def test_bytes_like_payloads(path: str) -> None:
    decode_payloads = FAST_DECODERS[path]
    lines = [event(i, ISO) for i in range(4)]
    as_bytes = decode_payloads([b"\n".join(lines[:2]), lines[2], lines[3]])
    padded = lines[3] + b" " * (-len(lines[3]) % 4)
    wide = memoryview(bytearray(padded)).cast("I")  # len() counts 4-byte items, not bytes
    other = decode_payloads([memoryview(b"\n".join(lines[:2])), bytearray(lines[2]), wide])
    assert as_comparable(other)[:2] == as_comparable(as_bytes)[:2]
    assert other.rejections == []


@pytest.mark.parametrize(
    "duplicated",
    [
        f'"ts":"{ISO}","ts":{MS}',  # found by the fuzzer: the reference keeps the last ts, the split rename hid the duplicate
        f'"ts":{MS},"ts":"{ISO}"',
        f'"ts":"{ISO}","ts":null',  # the last ts is null: rejected as missing by the reference path
        f'"ts":"{ISO}", "ts" : {MS}',
        f'"ts":{MS},"attrs":{{"ts":"{ISO}"}}',  # not a duplicate (another object): stored with both
    ],
)
def test_a_duplicated_ts_key_decodes_as_the_reference_path_does(duplicated: str) -> None:
    body = '{"event_id":"dup",' + duplicated + ',"kind":"log","service":"s","level":"info","event_type":"t","message":"m"}'
    mixed = [event(i, ISO if i % 2 else MS + i) for i in range(200)]  # a mixed chunk is read in split mode
    same_as_reference([b"\n".join(mixed[:100] + [body.encode()] + mixed[100:])])
