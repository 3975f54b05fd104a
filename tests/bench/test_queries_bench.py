"""``fleetlens bench queries`` and ``bench query-cost`` on a small store: the figures and targets are reported."""

from __future__ import annotations

import subprocess
import sys

from fleetlens.bench.queries import run_queries_bench
from fleetlens.bench.query_cost import run_query_cost
from fleetlens.settings import Settings
from fleetlens.workload.seed import seed


def test_queries_bench_measures_ingest_alone_and_with_queries(tmp_path):
    seed(tmp_path, 20_000, 200.0, users=100)
    settings = Settings(data_dir=tmp_path)
    result = run_queries_bench(settings, tmp_path, ingest_rate=5_000, phase_s=3, load_rate=6, clients=2,
                               mix="trace=2,users=1,events=1", warmup_s=1)

    assert result["events_in_store_before"] == 20_000
    alone = result["phases"]["ingest_alone"]["events_per_s"]
    with_queries = result["phases"]["ingest_with_queries"]["events_per_s"]
    assert 2_500 < alone < 7_000  # the cap holds ingest near 5,000 events/s
    assert 0 < with_queries < 7_000
    families = result["load"]["families"]
    assert set(families) <= {"trace", "users", "events"} and families["trace"]["requests"] > 0
    assert all(f["errors"] == 0 for f in families.values())
    assert set(result["targets"]) == {"trace_p99_ms", "aggregate_p99_ms", "ingest_drop"}
    assert not result.get("backlog_ran_out")


def test_queries_bench_refuses_a_missing_store_or_a_bad_mix_with_a_clear_error(tmp_path):
    # a real CLI process: the CLI's callback configures logging for its whole process
    def bench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fleetlens", "bench", "queries", *args],
                              capture_output=True, text=True, timeout=120)

    missing = bench("--store-dir", str(tmp_path / "none"))
    assert missing.returncode == 2 and "no store under" in missing.stderr and "workload.seed" in missing.stderr
    bad_mix = bench("--store-dir", str(tmp_path), "--mix", "bogus=1")
    assert bad_mix.returncode == 2 and "unknown query family 'bogus'" in bad_mix.stderr


def test_query_cost_bench_measures_every_family_of_the_mix(tmp_path):
    seed(tmp_path, 20_000, 200.0, users=100)
    result = run_query_cost(Settings(data_dir=tmp_path), tmp_path, "trace=2,perf=1,search=1", requests=3)

    families = result["families"]
    assert set(families) == {"trace", "perf", "search"}
    for f in families.values():
        assert f["requests"] == 3 and f["errors"] == 0 and 0 < f["p50_ms"] <= f["p90_ms"] and f["cpu_ms"] > 0
    weighted = (2 * families["trace"]["cpu_ms"] + families["perf"]["cpu_ms"] + families["search"]["cpu_ms"]) / 4
    assert result["mix_cpu_ms_per_request"] == round(weighted, 1)


def test_query_cost_bench_refuses_a_missing_store(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fleetlens", "bench", "query-cost", "--store-dir", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no store under" in done.stderr and "workload.seed" in done.stderr
