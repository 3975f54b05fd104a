"""The fast path must give exactly what the reference path gives, so it can never accept what
the reference rejects: on the vectors and on thousands of randomly mutated events."""

from __future__ import annotations

import json
import random

import orjson
import pytest

from fleetlens.bench.decode import make_events
from fleetlens.contract import decode as decode_mod
from fleetlens.contract import refpath
from fleetlens.contract.decode import decode_payloads_reference

from .conftest import FAST_DECODERS, as_comparable, load_vectors

_VALUES = [None, True, False, 0, -1, 1, 2.5, -0.0, 1e300, 2**53 + 1, 2**63, 2**64 + 5, "", "x", "2",
           "WARNING", "page_view", "success", "EUR", "eur", "2026-11-20T09:00:00Z", "2026-11-20T09:00:00.5+01:00",
           "k" * 70, [], [1], {}, {"a": 1}, {"a": "b", "c": 3}, {"ts": "x"}, {"ts": 5}]
_KEYS = ["event_id", "ts", "kind", "service", "level", "message", "operation", "amount", "currency", "attempt",
         "outcome", "line", "duration_ms", "value", "name", "attrs", "extra", "ts ", "Ts"]
_BYTE_MUTATIONS = [b"NaN", b"Infinity", b"-Inf", b"\xff", b"\\ud800", b"\\u0000", b"null", b" ", b"\r", b"\x01",
                   b"}", b"{", b",", b'"', b"\\", b"1e400", b"01", b"\xef\xbb\xbf"]


def mutate(rnd: random.Random, line: bytes) -> bytes:
    r = rnd.random()
    if r < 0.45:
        obj = orjson.loads(line)
        for _ in range(rnd.randint(1, 3)):
            key = rnd.choice(_KEYS + list(obj))
            if rnd.random() < 0.2:
                obj.pop(key, None)
            else:
                obj[key] = rnd.choice(_VALUES)
        seps = rnd.choice([(",", ":"), (", ", ": ")])
        return json.dumps(obj, separators=seps, ensure_ascii=rnd.random() < 0.5).encode()
    if r < 0.8:
        at = rnd.randrange(len(line) + 1)
        return line[:at] + rnd.choice(_BYTE_MUTATIONS) + line[at + rnd.randrange(3):]
    if r < 0.9:
        return line[: rnd.randrange(len(line))]
    return line + rnd.choice([b" ", b" {}", b"\r", b" null"])


def messages(rnd: random.Random, n: int, rate: float) -> list[bytes]:
    lines = [mutate(rnd, line) if rnd.random() < rate else line for line in make_events(n, seed=rnd.randrange(10**6))]
    out, i = [], 0
    while i < len(lines):
        k = rnd.choice([1, 1, 5, 50, 300])
        sep = rnd.choice([b"\n", b"\r\n", b"\n\n"])
        out.append(sep.join(lines[i : i + k]))
        i += k
    return out


@pytest.fixture
def fast_lines(monkeypatch) -> list[int]:
    """Counts the lines that did NOT take the fast path in ``decode_payloads``."""
    slow: list[int] = []
    real = refpath.parse_lines

    def spy(index, lines):
        lines = list(lines)
        slow.append(len(lines))
        return real(index, lines)

    monkeypatch.setattr(decode_mod.refpath, "parse_lines", spy)
    return slow


@pytest.mark.parametrize("path", FAST_DECODERS)
def test_vectors_all_at_once(path: str) -> None:
    payloads = [c["payload"] for c in load_vectors()]
    assert as_comparable(FAST_DECODERS[path](payloads)) == as_comparable(decode_payloads_reference(payloads))


@pytest.mark.parametrize("path", FAST_DECODERS)
@pytest.mark.parametrize("seed, rate", [(1, 0.0), (2, 0.02), (3, 0.2), (4, 1.0), (5, 0.05), (6, 0.002)])
def test_random_mutations(seed: int, rate: float, path: str, fast_lines: list[int]) -> None:
    rnd = random.Random(seed)
    payloads = messages(rnd, 3000, rate)
    fast = FAST_DECODERS[path](payloads)
    slow_count = sum(fast_lines)
    ref = decode_payloads_reference(payloads)
    assert as_comparable(fast) == as_comparable(ref)
    assert all("internal decoder error" not in r.reason for r in fast.rejections)
    if rate <= 0.002:  # rare bad lines: bisection (Arrow) or a punt (native) isolates them, the rest stays fast
        assert slow_count < 3000 * 0.25, "the fast path should carry most lines"
    if rate == 0.0:
        assert not fast.rejections and slow_count == 0
