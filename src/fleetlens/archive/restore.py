"""Restore: archived days back into the hot store, exactly once per row.

For each archived (table, day) of the range: the files are checked against the manifest (size,
SHA-256, rows), the rows whose key the hot table does not hold yet are inserted (so a day that is
partly hot, or a rerun after a crash, gets no duplicate), every archived key is then looked up in
the hot table, and only then the manifest switches to ``restored``: queries read the day from the
hot store from that moment, and the archiver leaves it hot for ``archive.restore_keep_days``.
The materialized views (``action_index``, ``users_1m``) fill themselves from the insert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from fleetlens.archive import drop
from fleetlens.archive.families import FAMILIES, Family
from fleetlens.archive.layout import ArchiveTarget, files_glob
from fleetlens.archive.manifest import ARCHIVED, RESTORED, now_iso, rebuild_catalog, save_catalog, save_manifest
from fleetlens.archive.reader import invalidate_views
from fleetlens.archive.verify import VerificationError, check_files
from fleetlens.store.client import Store

RESTORE_TIMEOUT_S = 3600.0


@dataclass
class RestoredDay:
    """One (table, day) brought back."""

    table: str
    date: str
    archived_rows: int
    inserted_rows: int


def restore(store: Store, target: ArchiveTarget, first: dt.date, last: dt.date,
            progress: Callable[[str, dt.date], None] | None = None) -> list[RestoredDay]:
    """Bring the archived days ``first``..``last`` (inclusive) of every family back into the hot store."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    catalog, manifests = rebuild_catalog(target, [f.name for f in FAMILIES])
    out = []
    for fam in FAMILIES:
        for day, m in sorted(manifests[fam.name].items()):
            if not first <= day <= last or m.state != ARCHIVED or not m.parts:
                continue
            if progress:
                progress(fam.name, day)
            check_files(target, fam, day, m.parts)
            drop.unstage(store, fam, day)  # rows an interrupted archive run left staged are hot again
            inserted = _insert_missing(store, target, fam, day, m.files)
            _verify_restored(store, target, fam, day, m.files, m.rows)
            m.state, m.restored_at = RESTORED, now_iso()
            save_manifest(target, m)
            catalog.put(m)
            save_catalog(target, catalog)
            invalidate_views()
            out.append(RestoredDay(fam.name, day.isoformat(), m.rows, inserted))
    return out


def _hot_keys(store: Store, fam: Family, day: dt.date) -> str:
    keys = ", ".join(f"`{c}`" for c in fam.table.order_by)
    return f"SELECT {keys} FROM {store.table(fam.name)} WHERE {fam.day_filter(day)}"


def _insert_missing(store: Store, target: ArchiveTarget, fam: Family, day: dt.date, files: list[str]) -> int:
    src = target.table_function(files_glob(fam.name, day, files), fam.structure)
    before = int(store.query_scalar(f"SELECT count() FROM {store.table(fam.name)} WHERE {fam.day_filter(day)}") or 0)
    store.command(
        f"INSERT INTO {store.table(fam.name)} ({fam.columns}) SELECT {fam.columns} FROM {src} "
        f"WHERE {fam.key} NOT IN ({_hot_keys(store, fam, day)})",
        timeout_s=RESTORE_TIMEOUT_S,
    )
    after = int(store.query_scalar(f"SELECT count() FROM {store.table(fam.name)} WHERE {fam.day_filter(day)}") or 0)
    return after - before


def _verify_restored(store: Store, target: ArchiveTarget, fam: Family, day: dt.date, files: list[str], rows: int) -> None:
    src = target.table_function(files_glob(fam.name, day, files), fam.structure)
    got = store.query_arrow(
        f"SELECT count() AS n, countIf({fam.key} IN ({_hot_keys(store, fam, day)})) AS found FROM {src}",
        timeout_s=RESTORE_TIMEOUT_S,
    ).to_pylist()[0]
    if int(got["n"]) != rows or int(got["found"]) != rows:
        raise VerificationError(f"{fam.name} {day}: {got['found']} of {rows} archived rows are in the hot store after restore")


