"""Hostile input: the generated corpus through the real pipeline, and a short coverage-guided fuzz run."""

from __future__ import annotations

from fleetlens.chaos.cli import run_fuzzer
from fleetlens.chaos.hostile import BAD_MAKERS, make_corpus
from fleetlens.chaos.hostile_run import run_hostile
from fleetlens.chaos.rig import Rig


def test_corpus_is_deterministic_and_covers_every_kind():
    a, b = make_corpus(2_000, seed=9), make_corpus(2_000, seed=9)
    assert a.payloads == b.payloads and len(a.bad_lines) == 2_000
    assert set(a.bad_kinds) == set(BAD_MAKERS)
    assert make_corpus(2_000, seed=10).payloads != a.payloads


def test_100k_hostile_lines_through_redis_all_dead_lettered_every_good_event_stored(tmp_path):
    rig = Rig.with_redis(tmp_path)
    try:
        result = run_hostile(rig, count=100_000, seed=1)
    finally:
        rig.close()
    print(result.summary())
    assert result.passed, result.summary()
    assert result.figures["dead letters"] == 100_000 and result.produced > 40_000


def test_short_fuzz_run_finds_no_crash(tmp_path):
    report = run_fuzzer(runs=1_000, seconds=40, corpus=tmp_path / "corpus")
    print(report)
    assert report["exit_code"] == 0 and report["crashes"] == 0, report["tail"]
    assert report["executions"] and report["executions"] >= 200, report  # fewer only on a starved machine
