"""index_lines: every line attributed to its payload and its line number inside it, on both paths."""

from __future__ import annotations

import array

import pytest

from fleetlens.contract import lines
from fleetlens.contract.lines import index_lines


def _expected(payloads: list) -> list[tuple[int, int, bytes]]:
    """(payload, line, bytes without the terminator) of every line, computed the plain way."""
    out = []
    for m, payload in enumerate(payloads):
        for n, line in enumerate(bytes(payload).split(b"\n")):
            out.append((m, n, line[:-1] if line.endswith(b"\r") else line))
    return out


def _actual(payloads: list) -> list[tuple[int, int, bytes]]:
    index = index_lines(payloads)
    return [(int(index.message[i]), int(index.line_no[i]), index.raw(i)) for i in range(len(index))]


CASES = {
    "one line each": [b'{"a":1}', b'{"b":2}', b"", b"  ", b'{"c":3}\r'],
    "ndjson": [b'{"a":1}\n{"b":2}', b'{"c":3}\r\n\r\n{"d":4}\n'],
    "mixed": [b'{"a":1}', b"\n", b'{"b":2}\n{"c":3}', b"", b'{"d":4}'],
    "one payload": [b'{"a":1}'],
    "one empty payload": [b""],
    "newlines only": [b"\n\n", b"\n"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_line_is_attributed_to_its_payload_and_line(name: str) -> None:
    assert _actual(CASES[name]) == _expected(CASES[name])


def test_no_payloads_no_lines() -> None:
    index = index_lines([])
    assert len(index) == len(index.message) == len(index.line_no) == len(index.state) == 0


def test_single_line_payloads_skip_sizing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """One event per message: line i is payload i without sizing every payload (the common case's shortcut)."""
    payloads = [b'{"i":%d}' % i for i in range(1000)]

    def sized(*args: object) -> None:
        raise AssertionError("single-line payloads were sized one by one")

    monkeypatch.setattr(lines, "_attribute", sized)
    assert _actual(payloads) == _expected(payloads)
    with pytest.raises(AssertionError, match="sized one by one"):
        index_lines([b'{"a":1}\n{"b":2}', b'{"c":3}'])


def test_payloads_whose_len_is_not_their_size() -> None:
    """A bytes-like payload with items wider than a byte (len counts items) is still attributed by its bytes."""
    wide = array.array("H", b'{"x":1}\n{"y":22}')  # 16 bytes, len 8
    payloads = [b'{"a":1}\n{"b":2}', memoryview(wide), b'{"c":3}']
    assert _actual(payloads) == _expected([bytes(p) for p in payloads])
