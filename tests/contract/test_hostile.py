"""Hostile input: nothing raises, nothing crashes, one bad line never takes its neighbours."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fleetlens.contract.decode import decode_payloads, decode_payloads_reference

from .conftest import FAST_DECODERS, as_comparable

TS = "2026-11-20T09:00:00.123Z"


def log(eid: str, **kw) -> bytes:
    e = {"event_id": eid, "ts": TS, "kind": "log", "service": "checkout", "level": "info",
         "event_type": "http_request", "message": "handled", **kw}
    return json.dumps(e, ensure_ascii=False).encode()


def ids(d) -> list[str]:
    return d.events.column("event_id").to_pylist() + d.metrics.column("event_id").to_pylist()


def sandwich(bad: bytes) -> bytes:
    """A bad line between two good ones."""
    return b"\n".join([log("good-1"), bad, log("good-2")])


def check_sandwich(bad: bytes, field: str = "payload") -> None:
    for decode in (*FAST_DECODERS.values(), decode_payloads_reference):
        d = decode([sandwich(bad)])
        assert ids(d) == ["good-1", "good-2"], (decode.__name__, d.rejections)
        assert [(r.line, r.field) for r in d.rejections] == [(1, field)], d.rejections
        assert d.rejections[0].raw == bad
    for decode in FAST_DECODERS.values():
        assert as_comparable(decode([sandwich(bad)])) == as_comparable(decode_payloads_reference([sandwich(bad)]))


@pytest.mark.parametrize(
    "bad, field",
    [
        (b"null", "payload"),
        (b"  null  ", "payload"),
        (b"[1, 2]", "payload"),
        (b"42", "payload"),
        (b'"text"', "payload"),
        (b"{not json", "payload"),
        (log("x1") + b" " + log("x2"), "payload"),  # two objects on one line
        (log("x1") + b" null " + log("x2"), "payload"),
        (log("x3")[:-1] + b', "value": NaN}', "payload"),
        (log("x4")[:-1] + b', "value": Infinity}', "payload"),
        (log("x5")[:-1] + b', "extra": -Inf}', "payload"),
        (log("x6", message="caf\u00e9").replace("é".encode(), b"\xc3"), "payload"),  # bad UTF-8
        (log("x7")[:-1] + b', "who": "\\ud800"}', "payload"),  # lone surrogate
        (b'{"event_id": "x8"}\x0c', "payload"),
        (log("x9", attempt="2"), "attempt"),
        (log("x10", line=1.5), "line"),
        (log("x11", duration_ms=True), "duration_ms"),
        (log("x12", attempt=2**63), "attempt"),
        (log("x13", attrs={"a": {"b": 1}}), "attrs"),
        (log("x14", attrs=[1]), "attrs"),
        (log("x15", extra=[1, 2]), "extra"),
        (log("x16", ts=1.5e12), "ts"),
        (log("x17", ts="2026-11-20T09:00:00"), "ts"),  # no offset
        (log("x18", ts=99999999999999999), "ts"),  # out of range
        (log("x19", attrs={"k" * 129: "v"}), "attrs"),
        (log("x20", message=""), "message"),
        (log("x21", duration_ms=-1), "duration_ms"),
    ],
)
def test_bad_line_among_good(bad: bytes, field: str) -> None:
    check_sandwich(bad, field)


def test_missing_fields() -> None:
    for bad, field in [(b"{}", "event_id"), (b'{"event_id": "m1"}', "ts"), (b'{"event_id": "m2", "ts": 1}', "kind")]:
        check_sandwich(bad, field)


def test_deep_nesting_does_not_crash() -> None:
    for opener, closer in ((b'{"a":', b"}"), (b"[", b"]")):
        bad = b'{"event_id": "deep", "attrs": ' + opener * 20000 + b"1" + closer * 20000 + b"}"
        check_sandwich(bad, "payload" if opener == b"[" else "payload")


def test_lone_null_line_does_not_crash_the_process() -> None:
    """pyarrow's JSON reader segfaults on a bare ``null`` line: run it where a crash shows."""
    code = (
        "from fleetlens.contract.decode import decode_payloads\n"
        "d = decode_payloads([b'null', b'{\"a\": 1}\\nnull\\n{\"b\": 2}', b'null\\n' * 1000])\n"
        "print(len(d.rejections))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1004"


def test_huge_line() -> None:
    big = log("big", message="x" * 10_000_000)
    d = decode_payloads([b"\n".join([log("a"), big, log("b")])])
    assert ids(d) == ["a", "big", "b"]
    row = d.events.to_pylist()[1]
    assert len(row["message"].encode()) == 65536 and dict(row["attrs"])["truncated"] == "10000000"


def test_truncation_on_character_boundary() -> None:
    msg = "é" * 40000  # 80,000 bytes; 65,536 is in the middle of no character
    d = decode_payloads([log("t", message=msg)])
    cut = d.events.column("message")[0].as_py()
    assert cut == "é" * 32768 and len(cut.encode()) == 65536
    msg = "a" + "€" * 30000  # 3-byte characters: the cut falls inside one
    cut = decode_payloads([log("t", message=msg)]).events.column("message")[0].as_py()
    assert len(cut.encode()) <= 65536 and cut == msg[: len(cut)] and len(cut.encode()) > 65533


def test_empty_and_blank_payloads() -> None:
    d = decode_payloads([b"", b"\n\n", b"  \r\n\t\n"])
    assert d.events.num_rows == 0 and d.metrics.num_rows == 0 and d.rejections == []
    assert decode_payloads([]).rejections == []


def test_crlf_bom_and_positions() -> None:
    p0 = b"\xef\xbb\xbf" + log("b1") + b"\r\n\r\n" + log("b2") + b"\r\n"
    p1 = log("c1") + b"\n" + b"{oops" + b"\r\n" + log("c2", level="loud")
    d = decode_payloads([p0, p1])
    assert ids(d) == ["b1", "b2", "c1"]
    assert [(r.message, r.line, r.field, r.event_id, r.raw) for r in d.rejections] == [
        (1, 1, "payload", "", b"{oops"),
        (1, 2, "level", "c2", log("c2", level="loud")),
    ]
    assert as_comparable(d) == as_comparable(decode_payloads_reference([p0, p1]))


def test_duplicate_keys_last_wins() -> None:
    line = log("d1")[:-1] + b', "level": "error"}'
    for decode in (*FAST_DECODERS.values(), decode_payloads_reference):
        assert decode([line]).events.column("level").to_pylist() == ["error"]


def test_normalization() -> None:
    line = log("n1", level="WARNING", region="eu", retries=3, ratio=0.5, ok=True, big=2**60, whole=2.0,
               attrs={"region": "from-attrs", "n": None}, nothing=None, name="alice")
    for decode in (*FAST_DECODERS.values(), decode_payloads_reference):
        row = decode([line]).events.to_pylist()[0]
        assert row["level"] == "warn"
        assert dict(row["attrs"]) == {"region": "from-attrs", "retries": "3", "ratio": "0.5", "ok": "true",
                                      "big": str(2**60), "whole": "2", "name": "alice"}
        assert [k for k, _ in row["attrs"]] == sorted(dict(row["attrs"]))
        assert row["app"] == "" and row["line"] is None and row["operation"] == ""


def test_reason_is_readable() -> None:
    d = decode_payloads([log("r", attempt="2")])
    assert d.rejections[0].reason == "attempt must be an integer >= 1, got '2' (string)"
    assert d.rejections[0].event_id == "r"
