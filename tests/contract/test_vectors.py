"""Every case of the shared contract vectors, through both decode paths."""

from __future__ import annotations

import pytest

from fleetlens.contract.decode import decode_payloads, decode_payloads_reference
from fleetlens.contract.schema import EVENTS_SCHEMA, METRICS_SCHEMA

from .conftest import FAST_DECODERS, load_vectors

CASES = load_vectors()
DECODERS = {"auto": decode_payloads, **FAST_DECODERS, "reference": decode_payloads_reference}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: dict, decoder: str) -> None:
    d = DECODERS[decoder]([case["payload"]])
    assert d.events.schema == EVENTS_SCHEMA
    assert d.metrics.schema == METRICS_SCHEMA
    stored = d.events.to_pylist() + d.metrics.to_pylist()
    assert sorted(e["event_id"] for e in stored) == sorted(case["accepted"])
    # within each table, input order is kept
    for table in (d.events, d.metrics):
        ids = table.column("event_id").to_pylist()
        assert ids == [i for i in case["accepted"] if i in ids]
    assert [{"line": r.line, "field": r.field} for r in d.rejections] == case["rejected"]
    for r in d.rejections:
        assert r.message == 0 and r.reason and r.raw == case["payload"].split(b"\n")[r.line].rstrip(b"\r")
    by_id = {e["event_id"]: e for e in stored}
    for eid, want in case.get("expect", {}).items():
        got = by_id[eid]
        if "ts_ms" in want:
            assert round(got["ts"].timestamp() * 1000) == want["ts_ms"]
        if "level" in want:
            assert got["level"] == want["level"]
        if "attrs_keys" in want:
            assert sorted(k for k, _ in got["attrs"]) == sorted(want["attrs_keys"])
        if "message_len" in want:
            assert len(got["message"].encode()) == want["message_len"]


def test_vectors_were_found() -> None:
    assert len(CASES) >= 40
