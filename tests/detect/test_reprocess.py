"""Reprocessing stored events (hot ∪ archive) through fixed rules: new alerts only, live alerts untouched."""

from __future__ import annotations

import datetime as dt

from fleetlens.archive.archiver import Archiver, cutoff_day
from fleetlens.archive.layout import target_from_settings
from fleetlens.alerts.sinks import StoreSink
from fleetlens.detect.config import RulesConfig
from fleetlens.detect.reprocess import reprocess
from fleetlens.detect.runner import Detector
from fleetlens.settings import Settings
from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema
from tests.detect.conftest import Run, in_order_chunks, simulate_run

UTC = dt.timezone.utc
START = (dt.datetime.now(UTC) - dt.timedelta(days=40)).replace(hour=10, minute=0, second=0, microsecond=0)


def _alert_rows(store):
    return {r["id"]: r for r in store.query_arrow(
        "SELECT id, rule, key, status, evidence, updated_at FROM alerts FINAL").to_pylist()}


def test_reprocess_with_a_fixed_rule_adds_only_the_missed_alerts(tmp_path):
    run: Run = simulate_run(("provider_outage@300+120", "service_crash@200+5"), seed=4, duration_s=900,
                            start_ms=int(START.timestamp() * 1000))
    settings = Settings(data_dir=tmp_path / "data")
    store = EmbeddedStore(tmp_path / "data" / "chdb", "fleetlens")
    ensure_schema(store)
    try:
        store.insert_arrow("events", run.events)
        store.insert_arrow("metrics", run.metrics)
        # the live detector ran with the payment rule broken (disabled)
        broken = RulesConfig()
        broken.payment_failures_same_provider.enabled = False
        live = Detector(settings, store, broken, sinks=[StoreSink(store)])
        for events, metrics, partition in in_order_chunks(run):
            live.process_tables(events, metrics, partition)
        before = _alert_rows(store)
        assert before and not any(r["rule"] == "payment_failures_same_provider" for r in before.values())
        # the day goes to the archive (local directory): reprocess must read it from there
        result = Archiver(store, target_from_settings(settings)).run(cutoff_day(settings.archive.retention_days))
        assert store.query_scalar("SELECT count() FROM events") == 0, result
        end = START + dt.timedelta(seconds=900)
        summary = reprocess(settings, store, RulesConfig(), START, end)
        after = _alert_rows(store)
        again = reprocess(settings, store, RulesConfig(), START, end)
        final = _alert_rows(store)
    finally:
        store.close()
    assert summary.events == run.events.num_rows + run.metrics.num_rows
    assert summary.archive_days == {START.date().isoformat()}
    new = {i: r for i, r in after.items() if i not in before}
    assert {r["rule"] for r in new.values()} == {"payment_failures_same_provider"}
    assert all("reprocessed_at" in r["evidence"] for r in new.values())
    assert {i: after[i] for i in before} == before  # live alerts untouched (same rows, same updated_at)
    assert set(summary.alerts_already_stored) == set(before)
    assert again.alerts_new == [] and final == after  # a second reprocess changes nothing
