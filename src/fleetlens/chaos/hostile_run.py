"""The hostile corpus through the real pipeline: Redis stream → ingest → store and dead-letter stream."""

from __future__ import annotations

from collections import Counter

from fleetlens.chaos.hostile import make_corpus
from fleetlens.chaos.rig import STREAM, Rig
from fleetlens.chaos.scenarios import Result


def run_hostile(rig: Rig, count: int = 100_000, seed: int = 1) -> Result:
    """Write the corpus, ingest until idle, then compare the store and the dead letters with the corpus's verdicts."""
    from fleetlens.ingest.run import build_worker
    from fleetlens.store.client import open_store

    corpus = make_corpus(count, seed)
    sink = rig.sink()
    try:
        sink.send(STREAM, corpus.payloads)
    finally:
        sink.close()
    settings = rig.settings()
    store = open_store(settings)
    failures: list[str] = []
    try:
        worker = build_worker(settings, store)
        try:
            worker.run(until_idle_s=3)
        finally:
            worker.source.close()
        ids = [r for t in ("events", "metrics") for r in
               store.query_arrow(f"SELECT event_id FROM {t}").column("event_id").to_pylist()]
        rejections_rows = int(store.query_scalar("SELECT count() FROM rejections"))
    finally:
        store.close()
    letters = rig.dead_letters()
    if set(ids) != set(corpus.good_ids):
        missing, extra = set(corpus.good_ids) - set(ids), set(ids) - set(corpus.good_ids)
        failures.append(f"{len(missing)} good events missing (e.g. {sorted(missing)[:3]}), {len(extra)} unexpected stored")
    if Counter(letter[b"data"] for letter in letters) != Counter(corpus.bad_lines):
        failures.append(f"dead letters differ from the bad lines: {len(letters)} letters for {len(corpus.bad_lines)} bad lines")
    without_reason = sum(1 for letter in letters if not letter.get(b"reason") or not letter.get(b"field"))
    if without_reason:
        failures.append(f"{without_reason} dead letters without a field or reason")
    if rejections_rows != len(corpus.bad_lines):
        failures.append(f"rejections table holds {rejections_rows} rows for {len(corpus.bad_lines)} bad lines")
    if worker.stats.rejected != len(corpus.bad_lines):
        failures.append(f"worker counted {worker.stats.rejected} rejections")
    figures = {"payloads": len(corpus.payloads), "bad lines": len(corpus.bad_lines), "kinds of bad line": len(corpus.bad_kinds),
               "dead letters": len(letters), "with field and reason": len(letters) - without_reason,
               "rejections table rows": rejections_rows, "good events": len(corpus.good_ids)}
    return Result(f"ingest: hostile corpus (seed {seed})", len(corpus.good_ids), len(ids), len(set(ids)), figures, failures)
