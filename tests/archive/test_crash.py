"""The archiver SIGKILLed at every step (a real `fleetlens archive run` process), then rerun: nothing lost,
nothing twice, the same answers as before archiving."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fleetlens.archive.archiver import CRASH_ENV
from fleetlens.archive.families import FAMILIES
from fleetlens.archive.layout import day_dir, target_from_settings
from fleetlens.archive.manifest import scan_manifests
from fleetlens.query import business, events
from fleetlens.query.common import Limits
from fleetlens.archive.reader import ArchiveView
from fleetlens.store.client import open_store

from tests.archive.conftest import DAYS, RETENTION_KEEPING_D2, json_rows, load, s3_env, s3_settings
from tests.archive.test_archive import WHOLE

LIMITS = Limits(timeout_s=30, max_rows=10_000, max_buckets=20_000)
KEYS = {"events": "event_id", "metrics": "event_id", "rejections": "position"}


def fleetlens(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleetlens", "--log-level", "warning", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def where_rows_are(settings) -> dict[str, dict[str, list[str]]]:
    """Per table: keys in the hot table, in the staging twin, and in the files the manifests list (read with pyarrow)."""
    target = target_from_settings(settings)
    out: dict[str, dict[str, list[str]]] = {}
    store = open_store(settings)
    try:
        for fam in FAMILIES:
            key = KEYS[fam.name]
            hot = store.query_arrow(f"SELECT {key} FROM {fam.name}")
            staging = store.query_arrow(f"SELECT {key} FROM {fam.staging.name}")
            archived: list[str] = []
            for day, m in scan_manifests(target, fam.name).items():
                for f in m.files:
                    with target.fs.open_input_file(target.path(f"{day_dir(fam.name, day)}/{f}")) as fh:
                        archived += pq.read_table(fh, columns=[key]).column(key).to_pylist()
            out[fam.name] = {"hot": hot.column(0).to_pylist() if hot.num_rows else [],
                             "staging": staging.column(0).to_pylist() if staging.num_rows else [],
                             "archive": archived}
    finally:
        store.close()
    return out


def test_sigkill_at_each_step_then_rerun(tmp_path, moto, s3_bucket, decoded):
    settings = s3_settings(tmp_path, moto, s3_bucket)
    store = open_store(settings)
    load(store, decoded)
    business_json = business.business_metrics(store, **WHOLE, interval="1h", limits=LIMITS).to_json()
    before = {
        "business": json_rows(business.business_metrics(store, **WHOLE, interval="1h", limits=LIMITS).tables["totals"]),
        "events": json_rows(events.search_events(store, **WHOLE, limit=5000, limits=LIMITS).tables["events"]),
    }
    store.close()
    original = {"events": set(decoded.events.column("event_id").to_pylist()),
                "metrics": set(decoded.metrics.column("event_id").to_pylist())}
    env = s3_env(settings)
    run = ("archive", "run", "--retention-days", str(RETENTION_KEEPING_D2))

    for step in ("after_export", "after_verify", "after_move", "after_commit"):
        crashed = fleetlens({**env, CRASH_ENV: step}, *run)
        assert crashed.returncode == -9, (step, crashed.stdout, crashed.stderr)
        rows = where_rows_are(settings)
        for table, ids in original.items():
            r = rows[table]
            assert set(r["hot"]) | set(r["staging"]) | set(r["archive"]) == ids, step  # nothing lost
            assert len(r["archive"]) == len(set(r["archive"])), step  # nothing archived twice
            assert not set(r["hot"]) & set(r["archive"]), step  # a row is hot or archived for queries, never both
            assert len(r["hot"]) == len(set(r["hot"])), step

    done = fleetlens(env, *run, "--json")
    assert done.returncode == 0, done.stderr
    final = orjson.loads(done.stdout)
    assert {d["status"] for d in final["days"]} <= {"archived", "nothing-new"}
    # events of D0 were committed by the run killed after its commit: this run only dropped the staged copy
    assert [(d["rows"], d["status"]) for d in final["days"] if (d["table"], d["date"]) == ("events", str(DAYS[0]))] == [(0, "nothing-new")]
    rows = where_rows_are(settings)
    for table, ids in original.items():
        r = rows[table]
        assert not r["staging"]
        hot = set(r["hot"])
        assert sorted(r["archive"]) == sorted(ids - hot)
        assert hot | set(r["archive"]) == ids
    assert len(rows["rejections"]["archive"]) == len(set(rows["rejections"]["archive"])) > 0

    store = open_store(settings)
    try:
        limits = Limits(timeout_s=30, max_rows=10_000, max_buckets=20_000, archive=ArchiveView.from_settings(settings))
        hot_days = store.query_arrow("SELECT DISTINCT toDate(ts) AS d FROM events ORDER BY d").column("d").to_pylist()
        assert hot_days == DAYS[2:]
        assert json_rows(business.business_metrics(store, **WHOLE, interval="1h", limits=limits).tables["totals"]) == before["business"]
        assert json_rows(events.search_events(store, **WHOLE, limit=5000, limits=limits).tables["events"]) == before["events"]
    finally:
        store.close()

    status = fleetlens(env, "archive", "status", "--json")
    assert status.returncode == 0, status.stderr
    summary = orjson.loads(status.stdout)
    assert [d["date"] for d in summary["archived"]["events"]] == [str(DAYS[0]), str(DAYS[1])]
    assert summary["totals"]["events"]["rows"] == len(original["events"]) - len(rows["events"]["hot"])
    assert summary["totals"]["events"]["compression_ratio"] > 1
    assert summary["last_run"]["rows"] == final["rows"] > 0
    assert [h["date"] for h in summary["hot"]["events"]] == [str(d) for d in DAYS[2:]]
    assert pc.sum(pa.array([d["rows"] for d in summary["archived"]["metrics"]])).as_py() > 0

    # the query CLI reads the archive too, and says so
    window = ("--start", WHOLE["start"].isoformat(), "--end", WHOLE["end"].isoformat())
    cli = fleetlens(env, "query", "business", *window, "--interval", "1h", "--json")
    assert cli.returncode == 0, cli.stderr
    answer = orjson.loads(cli.stdout)
    assert answer["totals"] == business_json["totals"] and answer["retries"] == business_json["retries"]
    assert answer["sources"]["events"]["archive"] == [str(DAYS[0]), str(DAYS[1])]

    # restore from the command line: D0 back in the hot store, the same answer, nothing twice
    restored = fleetlens(env, "archive", "restore", "--from", str(DAYS[0]), "--to", str(DAYS[0]))
    assert restored.returncode == 0, restored.stderr
    answer = orjson.loads(fleetlens(env, "query", "business", *window, "--interval", "1h", "--json").stdout)
    assert answer["totals"] == business_json["totals"]
    assert answer["sources"]["events"] == {"hot": [str(DAYS[0]), str(DAYS[2]), str(DAYS[3])], "archive": [str(DAYS[1])]}
    summary = orjson.loads(fleetlens(env, "archive", "status", "--json").stdout)
    assert [(d["date"], d["state"]) for d in summary["archived"]["events"]] == [(str(DAYS[0]), "restored"), (str(DAYS[1]), "archived")]
    assert [h["date"] for h in summary["hot"]["events"]] == [str(DAYS[0]), str(DAYS[2]), str(DAYS[3])]
