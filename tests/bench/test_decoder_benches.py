"""The decode and ingest benchmarks run both decoder fast paths and report each (figures are not
checked here: a benchmark is a command, its numbers go to docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from fleetlens.bench.decode import run_decode_bench
from fleetlens.bench.ingest import run_ingest_bench
from fleetlens.contract import decode
from fleetlens.settings import Settings


def test_the_decode_bench_reports_both_fast_paths() -> None:
    r = run_decode_bench(events=2_000, per_message=50, batch_events=1_000, repeat=1)
    assert r["paths"] == ["native", "arrow"]
    for path in r["paths"]:
        for case in ("simulator_batched", "simulator_single", "batched", "single"):
            assert r[f"{path}_{case}_events_per_s"] > 0
            assert r[f"{path}_{case}_cpu_us_per_event"] > 0


def test_the_ingest_bench_stores_every_event_with_each_decoder(tmp_path) -> None:
    """run_ingest_bench raises unless every round (native and Arrow decoder) stored every event."""
    results = run_ingest_bench(Settings(data_dir=tmp_path), events=3_000, single_messages=500, batch=100, rounds=1,
                               compare_arrow=True)
    assert set(results) == {"ndjson100", "single"}
    for r in results.values():
        assert r["decoder"] == "native"
        assert r["ingest_events_per_s"] > 0 and r["arrow_ingest_events_per_s"] > 0


def test_fast_path_switches_the_default_decoder_and_restores_it(monkeypatch) -> None:
    used = []
    real = decode._decode
    monkeypatch.setattr(decode, "_decode", lambda payloads, path: used.append(path) or real(payloads, path))
    decode.decode_payloads([b"{}"])
    with decode.fast_path(decode.ARROW):
        decode.decode_payloads([b"{}"])
    decode.decode_payloads([b"{}"])
    assert used == ["native", "arrow", "native"]
    with pytest.raises(ValueError):
        with decode.fast_path("reference"):
            pass


def test_the_detect_bench_drains_the_stream_with_each_decoder(tmp_path) -> None:
    from fleetlens.bench.detect import end_to_end

    r = end_to_end(events=2_000, rounds=1, workdir=tmp_path)
    assert r["decoder"] == "native"
    assert r["detector_events_per_s"] > 0 and r["arrow_detector_events_per_s"] > 0
