"""The archiver thread of `fleetlens up`, and the cluster rendering of the archive's DDL."""

from __future__ import annotations

import time

from fleetlens.archive.families import FAMILIES
from fleetlens.archive.manifest import load_catalog
from fleetlens.archive.schedule import ArchiveScheduler
from fleetlens.settings import Settings
from fleetlens.store.client import open_store
from fleetlens.store.tables import RenderContext, render_create, render_drop_partition, render_move_partition

from tests.archive.conftest import DAYS, RETENTION_KEEPING_D2, load


def test_scheduler_archives_at_start_and_stops(tmp_path, decoded):
    settings = Settings(data_dir=tmp_path / "data", archive={"retention_days": RETENTION_KEEPING_D2, "interval_s": 3600})
    store = open_store(settings)
    try:
        load(store, decoded)
        scheduler = ArchiveScheduler(settings, store)
        scheduler.start()
        deadline = time.monotonic() + 60
        while scheduler.last is None and time.monotonic() < deadline:
            time.sleep(0.1)
        scheduler.stop()
        assert not scheduler.is_alive()
        assert scheduler.last is not None and not scheduler.last.failed and scheduler.last.rows > 0
        assert sorted(load_catalog(scheduler.archiver.target).days("events")) == DAYS[:2]
        assert store.query_scalar("SELECT min(toDate(ts)) FROM events") == DAYS[2]
    finally:
        store.close()


def test_cluster_ddl_moves_and_drops_on_every_shard():
    ctx = RenderContext(database="fl", cluster="c3x2")
    for fam in FAMILIES:
        move = render_move_partition(fam.table, fam.staging, ctx, "20261001")
        assert move == (f"ALTER TABLE `fl`.`{fam.name}_local` ON CLUSTER 'c3x2' MOVE PARTITION ID '20261001' "
                        f"TO TABLE `fl`.`{fam.name}_archiving_local`")
        assert render_drop_partition(fam.staging, ctx, "20261001").startswith(
            f"ALTER TABLE `fl`.`{fam.name}_archiving_local` ON CLUSTER 'c3x2' DROP PARTITION ID")
        # the staging twin is the same table under another name: MOVE PARTITION needs identical structure
        hot, staging = render_create(fam.table, ctx), render_create(fam.staging, ctx)
        assert [s.replace(f"{fam.name}_archiving", fam.name) for s in staging] == hot


def test_scheduler_keeps_going_through_an_archive_target_outage(tmp_path, moto, s3_bucket, decoded):
    """The bucket is gone (real S3 errors from the S3-protocol server) for several runs: every day fails,
    nothing is dropped, the thread keeps going; once the bucket is back the next run archives every day, exactly."""
    import boto3

    from tests.archive.conftest import S3_ENV, s3_settings

    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"])
    s3.delete_bucket(Bucket=s3_bucket)  # the outage
    base = s3_settings(tmp_path, moto, s3_bucket)
    settings = base.model_copy(update={"archive": base.archive.model_copy(
        update={"retention_days": RETENTION_KEEPING_D2, "interval_s": 1.0})})
    store = open_store(settings)
    runs = []
    try:
        load(store, decoded)
        rows = {t: int(store.query_scalar(f"SELECT count() FROM {t}")) for t in ("events", "metrics")}
        scheduler = ArchiveScheduler(settings, store, on_run=runs.append)
        scheduler.start()
        deadline = time.monotonic() + 120
        while scheduler.failed_runs < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler.failed_runs >= 3 and "does not exist" in scheduler.last_error
        assert all(r.failed and not [d for d in r.days if d.status == "archived"] for r in runs)
        assert {t: int(store.query_scalar(f"SELECT count() FROM {t}")) for t in rows} == rows  # nothing dropped
        assert scheduler.is_alive()

        s3.create_bucket(Bucket=s3_bucket)  # the target is back
        while not (runs and runs[-1].days and not runs[-1].failed) and time.monotonic() < deadline:
            time.sleep(0.1)
        scheduler.stop()
        assert runs and runs[-1].days and not runs[-1].failed
        archived = sum(r.rows for r in runs)
        hot = {t: int(store.query_scalar(f"SELECT count() FROM {t}")) for t in rows}
        assert sorted(load_catalog(scheduler.archiver.target).days("events")) == DAYS[:2]
        assert store.query_scalar("SELECT min(toDate(ts)) FROM events") == DAYS[2]
        moved = {t: rows[t] - hot[t] for t in rows}
        assert moved["events"] > 0 and archived >= sum(moved.values())  # rejections are archived too
    finally:
        store.close()
