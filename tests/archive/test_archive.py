"""Export → verify → drop on a real S3-protocol server; hot ∪ archive answers equal to the hot ones; late events;
restore; readers that are not fleetlens."""

from __future__ import annotations

import dataclasses
import datetime as dt

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fleetlens.archive.archiver import Archiver
from fleetlens.archive.layout import target_from_settings
from fleetlens.archive.manifest import ARCHIVED, RESTORED, load_catalog, load_manifest
from fleetlens.archive.reader import ArchiveView, iter_archived_events
from fleetlens.archive.restore import restore
from fleetlens.query import business, events, perf, rejections, trace, users
from fleetlens.query.common import Limits
from fleetlens.store.client import open_store

from tests.archive.conftest import DAYS, UTC, json_rows, load, s3_settings

LIMITS = Limits(timeout_s=30, max_rows=10_000, max_buckets=20_000)


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


WHOLE = {"start": day_start(DAYS[0]), "end": day_start(DAYS[3]) + dt.timedelta(days=1)}
ARCHIVED_ONLY = {"start": day_start(DAYS[0]) + dt.timedelta(hours=20), "end": day_start(DAYS[1]) + dt.timedelta(hours=23)}
SPANNING = {"start": day_start(DAYS[1]) + dt.timedelta(hours=12), "end": day_start(DAYS[2]) + dt.timedelta(hours=12)}
RANGES = {"whole": WHOLE, "archived": ARCHIVED_ONLY, "spanning": SPANNING}


def answers(store, limits: Limits, action_ids: list[str]) -> dict[str, tuple[dict, dict]]:
    """Every query family that reads events, metrics or rejections, over each range: (tables as bytes, meta)."""
    out = {}
    for name, rng in RANGES.items():
        runs = {
            "events": events.search_events(store, start=rng["start"], end=rng["end"], limit=2000, limits=limits),
            "events_filtered": events.search_events(store, events.EventFilter(levels=["warn", "error"], kinds=["log"]),
                                                    start=rng["start"], end=rng["end"], limit=500, limits=limits),
            "business": business.business_metrics(store, **rng, interval="1h", limits=limits),
            "durations": perf.durations(store, **rng, interval="3h", limits=limits),
            "resources": perf.resources(store, **rng, interval="1h", limits=limits),
            "users": users.simultaneous_users(store, **rng, step="5m", limits=limits),
            "rejections": rejections.rejection_counts(store, **rng, limits=limits),
        }
        # any(event_id) is an example of its group, not a fixed answer: compared without it
        by_reason = runs["rejections"].tables["by_reason"]
        runs["rejections"].tables["by_reason"] = by_reason.drop_columns(["example_event_id"])
        for family, result in runs.items():
            out[f"{name}/{family}"] = ({k: json_rows(t) for k, t in result.tables.items()}, result.meta)
    for aid in action_ids:
        result = trace.trace(store, aid, limits=limits)
        assert result.meta["found"]
        out[f"trace/{aid}"] = ({k: json_rows(t) for k, t in result.tables.items()}, result.meta)
    return out


def pick_actions(decoded) -> list[str]:
    """Three purchases: one early on D0, one crossing midnight D0 → D1 if any, one on D2 (hot)."""
    ev = decoded.events.filter(pc.equal(decoded.events.column("operation"), "buy"))
    days = pc.cast(pc.cast(ev.column("ts"), pa.timestamp("ms", "UTC")), pa.date32()).to_pylist()
    ids = ev.column("action_id").to_pylist()
    chosen = [ids[days.index(DAYS[0])], ids[days.index(DAYS[1])], ids[days.index(DAYS[2])]]
    return chosen


def day_counts(store, table: str, column: str = "ts") -> dict[dt.date, int]:
    tbl = store.query_arrow(f"SELECT toDate({column}) AS d, count() AS n FROM {table} GROUP BY d ORDER BY d")
    return {r["d"]: r["n"] for r in tbl.to_pylist()} if tbl.num_rows else {}


@pytest.fixture
def s3_store(tmp_path, moto, s3_bucket, decoded):
    """(settings, store) of a fresh store holding the simulated days, archiving to a fresh bucket."""
    settings = s3_settings(tmp_path, moto, s3_bucket)
    store = open_store(settings)
    load(store, decoded)
    yield settings, store
    store.close()


QUANTILE_COLUMNS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")


def _assert_same_durations(got: bytes, want: bytes, key: str) -> None:
    """Durations rows byte-identical but for the t-digest quantiles, which must agree within 2 % (a digest depends
    on the grouping it was merged in; docs/queries.md bounds their error against the true quantiles), and the
    averages, within float rounding (sums in another order)."""
    got_rows, want_rows = orjson.loads(got), orjson.loads(want)
    inexact = (*QUANTILE_COLUMNS, "avg_ms")
    assert [{k: v for k, v in r.items() if k not in inexact} for r in got_rows] == \
        [{k: v for k, v in r.items() if k not in inexact} for r in want_rows], key
    assert [r["avg_ms"] for r in got_rows] == pytest.approx([r["avg_ms"] for r in want_rows], rel=1e-9), key
    assert [r[c] for r in got_rows for c in QUANTILE_COLUMNS] == \
        pytest.approx([r[c] for r in want_rows for c in QUANTILE_COLUMNS], rel=0.02), key


def test_export_verify_drop_then_queries_answer_as_before(s3_store, decoded):
    settings, store = s3_store
    target = target_from_settings(settings)
    actions = pick_actions(decoded)
    before_counts = {t: day_counts(store, t) for t in ("events", "metrics")}
    before = answers(store, LIMITS, actions)
    for rng in RANGES:  # the rollups' answers compared below are not empty
        assert len(orjson.loads(before[f"{rng}/business"][0]["retries"])) > 0
        assert sum(r["active_users"] for r in orjson.loads(before[f"{rng}/resources"][0]["active_users"])) > 0

    from fleetlens.observe import metrics

    written_before = metrics.ARCHIVE_BYTES.labels("events")._value.get()
    steps = []
    result = Archiver(store, target, progress=lambda t, step, d, _: steps.append((t, step, d))).run(DAYS[2])
    assert not result.failed
    # Prometheus: the Parquet bytes of the events days, and no lag (nothing left hot by a failure)
    assert metrics.ARCHIVE_BYTES.labels("events")._value.get() - written_before == sum(
        d.bytes for d in result.days if d.table == "events")
    assert metrics.ARCHIVE_LAG.labels("events")._value.get() == 0
    archived = {(d.table, d.date) for d in result.days if d.status == "archived"}
    assert {("events", str(DAYS[0])), ("events", str(DAYS[1])), ("metrics", str(DAYS[0])), ("metrics", str(DAYS[1]))} <= archived
    # every day went export → verify → move → commit → drop, in that order
    assert [s for t, s, d in steps if (t, d) == ("events", DAYS[0])] == ["export", "verify", "move", "commit", "drop"]

    # the hot store lost exactly the archived days; the manifests hold their row counts, read back
    for table in ("events", "metrics"):
        assert day_counts(store, table) == {d: n for d, n in before_counts[table].items() if d >= DAYS[2]}
        for day in DAYS[:2]:
            m = load_manifest(target, table, day)
            assert m.state == ARCHIVED and m.rows == before_counts[table][day] and len(m.parts) == 1
            assert m.parts[0].sha256 and m.parts[0].bytes > 0 and m.hot_bytes > 0
            assert m.parts[0].time_min.startswith(str(day)) and m.parts[0].time_max.startswith(str(day))
    assert store.query_scalar("SELECT count() FROM users_1m WHERE toDate(minute) < {d:Date}", {"d": DAYS[2]}) == 0
    assert store.query_scalar("SELECT count() FROM payment_attempts WHERE toDate(ts) < {d:Date}", {"d": DAYS[2]}) == 0
    assert store.query_scalar("SELECT count() FROM payment_attempts") > 0

    after = answers(store, dataclasses.replace(LIMITS, archive=ArchiveView(target, ttl_s=0)), actions)
    assert after.keys() == before.keys()
    for key, (tables, meta) in before.items():
        if key.endswith("/durations"):  # t-digests merged in another grouping (hot: minutes' states; archive: rows)
            _assert_same_durations(after[key][0]["durations"], tables["durations"], key)
            continue
        assert after[key][0] == tables, key  # byte-identical rows, floats included
        sources = after[key][1]["sources"]
        if key.startswith(("whole/", "archived/", "spanning/")):
            table = "rejections" if key.endswith("/rejections") else "metrics" if key.endswith("/resources") else "events"
            archived_days = sources[table]["archive"]
            expected = {"whole": [str(DAYS[0]), str(DAYS[1])], "archived": [str(DAYS[0]), str(DAYS[1])],
                        "spanning": [str(DAYS[1])]}[key.split("/")[0]]
            assert archived_days == expected, key
    assert after[f"trace/{actions[2]}"][1]["sources"]["events"]["archive"] == []  # a hot trace reads no file

    # idempotent: a second run exports nothing and leaves the archive as it is
    again = Archiver(store, target).run(DAYS[2])
    assert not again.days and load_manifest(target, "events", DAYS[0]).files == ["part-00000.parquet"]


def test_late_events_go_to_a_later_part_and_nothing_twice(s3_store, decoded):
    settings, store = s3_store
    target = target_from_settings(settings)
    Archiver(store, target).run(DAYS[2])
    d0 = decoded.events.filter(pc.equal(pc.cast(pc.cast(decoded.events.column("ts"), pa.timestamp("ms", "UTC")), pa.date32()),
                                        pa.scalar(DAYS[0], pa.date32())))
    late = d0.slice(0, 25).set_column(0, d0.schema.field("event_id"), pa.array([f"late-{i}" for i in range(25)]))
    redelivered = d0.slice(100, 10)  # already archived: must not be archived again
    store.insert_arrow("events", pa.concat_tables([late, redelivered]))

    view = ArchiveView(target, ttl_s=0)
    limits = dataclasses.replace(LIMITS, archive=view)
    rng = {"start": day_start(DAYS[0]), "end": day_start(DAYS[1])}
    result = Archiver(store, target).run(DAYS[2])
    assert [(d.table, d.date, d.rows) for d in result.days] == [("events", str(DAYS[0]), 25)]
    m = load_manifest(target, "events", DAYS[0])
    assert m.files == ["part-00000.parquet", "part-00001.parquet"] and m.rows == d0.num_rows + 25
    assert day_counts(store, "events").get(DAYS[0]) is None  # the redelivered copies were verified and dropped
    page = events.search_events(store, **rng, limit=10_000, counts=False, limits=limits).tables["events"]
    assert page.num_rows == d0.num_rows + 25
    assert len(set(page.column("event_id").to_pylist())) == page.num_rows
    # a day with a late part is still replayed in time order
    replay = pa.concat_tables(list(iter_archived_events(settings, **rng, batch_rows=300)))
    assert replay.num_rows == d0.num_rows + 25 and replay.column("ts").to_pylist() == sorted(replay.column("ts").to_pylist())


def test_restore_round_trips_exactly(s3_store, decoded):
    settings, store = s3_store
    target = target_from_settings(settings)
    original = store.query_arrow("SELECT * FROM events WHERE toDate(ts) IN ({a:Date}, {b:Date}) ORDER BY event_id",
                                 {"a": DAYS[0], "b": DAYS[1]})
    original_users = users.simultaneous_users(store, **WHOLE, step="1m", limits=LIMITS).tables["users"]
    Archiver(store, target).run(DAYS[2])
    # D0 partly hot again: 100 of its events arrive once more before the restore
    store.insert_arrow("events", original.filter(pc.equal(pc.cast(original.column("ts"), pa.date32()),
                                                          pa.scalar(DAYS[0], pa.date32()))).slice(0, 100))
    restored = restore(store, target, DAYS[0], DAYS[1])
    by_table = {(r.table, r.date): r for r in restored}
    assert by_table[("events", str(DAYS[0]))].inserted_rows == by_table[("events", str(DAYS[0]))].archived_rows - 100
    back = store.query_arrow("SELECT * FROM events WHERE toDate(ts) IN ({a:Date}, {b:Date}) ORDER BY event_id",
                             {"a": DAYS[0], "b": DAYS[1]})
    assert back.equals(original)
    assert load_manifest(target, "events", DAYS[0]).state == RESTORED
    assert load_catalog(target).days("events") == {}  # queries read restored days from the hot store only
    limits = dataclasses.replace(LIMITS, archive=ArchiveView(target, ttl_s=0))
    assert json_rows(users.simultaneous_users(store, **WHOLE, step="1m", limits=limits).tables["users"]) == json_rows(original_users)
    assert restore(store, target, DAYS[0], DAYS[1]) == []  # nothing left to restore: no duplicate

    # restored days stay hot for restore_keep_days; afterwards they go back without new files
    assert all(d.status == "skipped-restored" for d in Archiver(store, target, restore_keep_days=7).run(DAYS[2]).days)
    rerun = Archiver(store, target, restore_keep_days=0).run(DAYS[2])
    assert {d.status for d in rerun.days} == {"nothing-new"}
    m = load_manifest(target, "events", DAYS[0])
    assert m.state == ARCHIVED and m.files == ["part-00000.parquet"] and day_counts(store, "events").get(DAYS[0]) is None


def test_iter_archived_events_yields_the_archived_rows(s3_store, decoded):
    settings, store = s3_store
    Archiver(store, target_from_settings(settings)).run(DAYS[2])
    start, end = day_start(DAYS[0]) + dt.timedelta(hours=22), day_start(DAYS[1]) + dt.timedelta(hours=6)
    got = pa.concat_tables(list(iter_archived_events(settings, start, end, batch_rows=500)))  # many batches, many hours
    ts = pc.cast(decoded.events.column("ts"), pa.timestamp("ms", "UTC"))
    mask = pc.and_(pc.greater_equal(ts, pa.scalar(start, pa.timestamp("ms", "UTC"))), pc.less(ts, pa.scalar(end, pa.timestamp("ms", "UTC"))))
    want = decoded.events.filter(mask)
    assert got.num_rows == want.num_rows > 0
    assert sorted(got.column("event_id").to_pylist()) == sorted(want.column("event_id").to_pylist())
    assert got.schema.field("ts").type == pa.timestamp("ms", "UTC")
    # event-time order (ts, kind, service, event_id), for replaying through the detector
    order = [(c, "ascending") for c in ("ts", "kind", "service", "event_id")]
    assert got.column("event_id").to_pylist() == want.sort_by(order).column("event_id").to_pylist()


def test_a_damaged_archive_file_blocks_the_drop(tmp_path, decoded):
    """A listed file whose bytes changed fails verification: the day's late rows stay hot, nothing is dropped."""
    from fleetlens.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    store = open_store(settings)
    try:
        load(store, decoded)
        target = target_from_settings(settings)
        Archiver(store, target).run(DAYS[2])
        part = settings.archive_dir / f"table=events/date={DAYS[0]}/part-00000.parquet"
        data = bytearray(part.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, different checksum
        part.write_bytes(bytes(data))
        late = decoded.events.filter(pc.equal(decoded.events.column("kind"), "log")).slice(0, 5)
        late = late.set_column(0, late.schema.field("event_id"), pa.array([f"late-{i}" for i in range(5)]))
        late = late.set_column(1, late.schema.field("ts"), pa.array([day_start(DAYS[0]) + dt.timedelta(hours=23)] * 5,
                                                                   pa.timestamp("ms", "UTC")))
        store.insert_arrow("events", late)
        result = Archiver(store, target).run(DAYS[2])
        failed = [(d.table, d.date) for d in result.failed]
        assert failed == [("events", str(DAYS[0]))] and "sha256" in result.failed[0].error
        assert store.query_scalar("SELECT count() FROM events WHERE toDate(ts) = {d:Date}", {"d": DAYS[0]}) == 5
        assert load_manifest(target, "events", DAYS[0]).files == ["part-00000.parquet"]
    finally:
        store.close()


def test_restore_brings_back_rows_an_interrupted_run_left_staged(s3_store, decoded):
    from fleetlens.archive import drop
    from fleetlens.archive.families import EVENTS

    settings, store = s3_store
    target = target_from_settings(settings)
    Archiver(store, target).run(DAYS[2])
    late = decoded.events.slice(0, 3)
    late = late.set_column(0, late.schema.field("event_id"), pa.array(["late-a", "late-b", "late-c"]))
    late = late.set_column(1, late.schema.field("ts"), pa.array([day_start(DAYS[0]) + dt.timedelta(hours=23)] * 3,
                                                               pa.timestamp("ms", "UTC")))
    store.insert_arrow("events", late)
    drop.move_to_staging(store, EVENTS, DAYS[0])  # as a run killed right after its move leaves it
    assert store.query_scalar("SELECT count() FROM events_archiving") == 3
    restore(store, target, DAYS[0], DAYS[0])
    assert store.query_scalar("SELECT count() FROM events_archiving") == 0
    n = store.query_scalar("SELECT count() FROM events WHERE toDate(ts) = {d:Date}", {"d": DAYS[0]})
    assert n == load_manifest(target, "events", DAYS[0]).rows + 3
    assert store.query_scalar("SELECT count(DISTINCT event_id) FROM events WHERE toDate(ts) = {d:Date}", {"d": DAYS[0]}) == n
