"""A deterministic corpus of malformed and hostile payloads mixed with good events.

``make_corpus(count, seed)`` builds MQ payloads (NDJSON, 1–6 lines each, sometimes with blank
lines) holding ``count`` bad lines of many kinds — broken UTF-8, not JSON, truncated JSON, wrong
types, missing fields, values out of range, huge keys and ids, deep nesting, NaN, random bytes,
SQL and shell injection in fields that must be enums — and good events around them, some of them
hostile but valid (injection strings, control characters and emoji in free-text fields, a
100 KB message that the contract truncates). The corpus knows its own verdicts, from the
contract's rules, not from the decoder: the ids of the good events and the exact bytes of every
bad line, so a run can check that every bad line reached the dead-letter stream and every good
event the store. Same seed, same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

import orjson

INJECTIONS = (
    "'; DROP TABLE events; --",
    "' OR '1'='1",
    "1; SELECT * FROM system.users",
    "\") UNION ALL SELECT name FROM system.tables --",
    "{event_id:String}",
    "$(rm -rf /)",
    "`reboot`",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "%s%s%s%n",
    "\u202eevil\u202c",
    "\\N",
)
TS = "2026-11-20T09:00:00.123Z"


def _log(eid: str, **kw: object) -> dict:
    return {"event_id": eid, "ts": TS, "kind": "log", "service": "checkout", "level": "info",
            "event_type": "http_request", "message": "handled", **kw}


def _metric(eid: str, **kw: object) -> dict:
    return {"event_id": eid, "ts": 1_795_000_000_000, "kind": "metric", "service": "node", "host": "h1",
            "name": "cpu_percent", "value": 12.5, **kw}


def _biz(eid: str, **kw: object) -> dict:
    return {"event_id": eid, "ts": TS, "kind": "business", "service": "payment", "operation": "payment_attempt",
            "action_id": f"a-{eid}", "user_id": "u1", "amount": 10.0, "currency": "EUR", "provider": "p1",
            "attempt": 1, "outcome": "success", **kw}


def _j(event: dict) -> bytes:
    return orjson.dumps(event)


def _without(event: dict, key: str) -> dict:
    return {k: v for k, v in event.items() if k != key}


def _deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# Each maker returns one bad line for a unique id; none contains a newline or is blank.
BAD_MAKERS: dict[str, Callable[[str, random.Random], bytes]] = {
    "not json": lambda i, r: b"{not json " + i.encode(),
    "truncated json": lambda i, r: _j(_log(i, message="cut here"))[:-12],
    "json array": lambda i, r: b'["' + i.encode() + b'", 1, 2]',
    "json string": lambda i, r: b'"' + i.encode() + b'"',
    "json number": lambda i, r: str(r.randrange(10**12)).encode() + b"." + i.encode()[-3:].hex().encode(),
    "two objects on a line": lambda i, r: _j(_log(i)) + b" " + _j(_log(i + "b")),
    "broken utf-8": lambda i, r: _j(_log(i, message="caf\u00e9 ok")).replace("\u00e9".encode(), b"\xc3\x28"),
    "overlong utf-8": lambda i, r: _j(_log(i, message="slash")).replace(b"slash", b"sl\xc0\xafsh"),
    "lone surrogate": lambda i, r: _j(_log(i))[:-1] + b',"who":"\\ud800"}',
    "raw control char": lambda i, r: _j(_log(i)).replace(b"handled", b"hand\x01led"),
    "nan": lambda i, r: _j(_metric(i))[:-1].replace(b"12.5", b"NaN") + b"}",
    "infinity": lambda i, r: _j(_metric(i)).replace(b"12.5", b"-Infinity"),
    "wrong type: level": lambda i, r: _j(_log(i, level=123)),
    "wrong type: ts": lambda i, r: _j(_log(i, ts=True)),
    "wrong type: service": lambda i, r: _j(_log(i, service=["checkout"])),
    "wrong type: event_id": lambda i, r: _j(_log(0, message=i)),
    "wrong type: duration_ms": lambda i, r: _j(_log(i, duration_ms="fast")),
    "wrong type: attempt": lambda i, r: _j(_biz(i, attempt="2")),
    "wrong type: amount": lambda i, r: _j(_biz(i, amount=True)),
    "wrong type: attrs list": lambda i, r: _j(_log(i, attrs=[1, 2])),
    "wrong type: attrs nested": lambda i, r: _j(_log(i, attrs={"a": {"b": 1}})),
    "wrong type: extra field list": lambda i, r: _j(_log(i, extra=[1, 2])),
    "missing: event_id": lambda i, r: _j(_without(_log("x", message=i), "event_id")),
    "missing: ts": lambda i, r: _j(_without(_log(i), "ts")),
    "missing: kind": lambda i, r: _j(_without(_log(i), "kind")),
    "missing: service": lambda i, r: _j(_without(_log(i), "service")),
    "missing: level": lambda i, r: _j(_without(_log(i), "level")),
    "missing: message": lambda i, r: _j(_without(_log(i), "message")),
    "missing: action_id": lambda i, r: _j(_without(_biz(i), "action_id")),
    "missing: metric value": lambda i, r: _j(_without(_metric(i), "value")),
    "object of unknown fields": lambda i, r: b'{"x":"' + i.encode() + b'"}',
    "enum: kind": lambda i, r: _j(_log(i, kind="trace")),
    "enum: level injection": lambda i, r: _j(_log(i, level=r.choice(INJECTIONS))),
    "enum: operation injection": lambda i, r: _j(_biz(i, operation=r.choice(INJECTIONS))),
    "enum: outcome": lambda i, r: _j(_biz(i, outcome="maybe")),
    "currency": lambda i, r: _j(_biz(i, currency="EURO")),
    "range: attempt 0": lambda i, r: _j(_biz(i, attempt=0)),
    "range: negative amount": lambda i, r: _j(_biz(i, amount=-5)),
    "range: negative duration": lambda i, r: _j(_log(i, duration_ms=-1)),
    "range: ts far future": lambda i, r: _j(_log(i, ts=99_999_999_999_999_999)),
    "range: ts without offset": lambda i, r: _j(_log(i, ts="2026-11-20T09:00:00")),
    "range: ts not a date": lambda i, r: _j(_log(i, ts="2026-13-45T99:00:00Z")),
    "range: int64 overflow": lambda i, r: _j(_log(i))[:-1] + b',"line":99999999999999999999999}',
    "huge: event_id": lambda i, r: _j(_log(i + "x" * 80)),
    "huge: attrs key": lambda i, r: _j(_log(i, attrs={"k" * 200: "v"})),
    "empty: message": lambda i, r: _j(_log(i, message="")),
    "deep nesting": lambda i, r: b'{"event_id":"' + i.encode() + b'","attrs":' + _deep(r.randrange(300, 5000)) + b"}",
    "deep array": lambda i, r: b'{"event_id":"' + i.encode() + b'","x":' + b"[" * 3000 + b"]" * 3000 + b"}",
    "random bytes": lambda i, r: b"#" + i.encode() + bytes(b for b in r.randbytes(r.randrange(1, 200)) if b not in b"\r\n"),
}


def _good(eid: str, rng: random.Random) -> bytes:
    """A valid event, often with hostile-but-legal content."""
    pick = rng.randrange(8)
    if pick == 0:
        return _j(_metric(eid, value=rng.uniform(0, 100)))
    if pick == 1:
        return _j(_biz(eid, attempt=rng.randrange(1, 4)))
    if pick == 2:
        return _j(_log(eid, service=rng.choice(INJECTIONS), message=rng.choice(INJECTIONS)))
    if pick == 3:
        return _j(_log(eid, attrs={rng.choice(INJECTIONS)[:100]: rng.choice(INJECTIONS), "n": 1}))
    if pick == 4:
        return _j(_log(eid, message="tab\tquote\"back\\slash \u0000 nul \U0001f600 emoji \u202e rtl"))
    if pick == 5 and rng.random() < 0.05:
        return _j(_log(eid, message="m" * 100_000))  # legal: truncated to 64 KiB
    return _j(_log(eid, level=rng.choice(["INFO", "Warning", "error", "debug"]), host=f"h{rng.randrange(50)}"))


@dataclass
class Corpus:
    """Payloads and their verdicts."""

    payloads: list[bytes] = field(default_factory=list)
    good_ids: list[str] = field(default_factory=list)
    bad_lines: list[bytes] = field(default_factory=list)
    bad_kinds: dict[str, int] = field(default_factory=dict)


def make_corpus(count: int, seed: int = 1, good_per_bad: float = 0.5) -> Corpus:
    """``count`` bad lines and about ``good_per_bad`` × ``count`` good events, in NDJSON payloads."""
    rng = random.Random(seed)
    corpus = Corpus()
    kinds = list(BAD_MAKERS)
    bad = good = 0
    while bad < count:
        lines: list[bytes] = []
        for _ in range(rng.randrange(1, 7)):
            if bad < count and rng.random() < 1 / (1 + good_per_bad):
                kind = kinds[bad % len(kinds)]
                line = BAD_MAKERS[kind](f"bad-{seed}-{bad}", rng)
                corpus.bad_lines.append(line)
                corpus.bad_kinds[kind] = corpus.bad_kinds.get(kind, 0) + 1
                bad += 1
            else:
                eid = f"good-{seed}-{good}"
                lines.append(_good(eid, rng))
                corpus.good_ids.append(eid)
                good += 1
                continue
            lines.append(line)
            if rng.random() < 0.1:
                lines.append(b"  ")  # blank lines are skipped, not rejected
        corpus.payloads.append(b"\n".join(lines))
    return corpus
