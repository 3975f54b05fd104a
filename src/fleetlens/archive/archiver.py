"""The archiver: every day partition older than the retention goes export → verify → move → commit → drop.

For one (table, day), each step is safe to interrupt (docs/archive.md has the full argument):

1. **sweep**: delete part files of the day that no manifest lists (an interrupted export);
2. **export** the day's rows missing from the archive (hot + staging, minus archived keys) as the
   next part file, read it back (rows, size, SHA-256);
3. **verify**: every listed file (and the new one) is intact, and every hot row's key is in them;
4. **move** the hot partition to the staging twin (atomic); if rows slipped in since the
   verification (a late event), go back to 2: they are in staging now and get a part of their own;
5. **commit**: write the manifest (the day is now read from the archive) and the catalog;
6. **drop** the staging partition and the day's ``users_1m`` partition.

A crash before 5 leaves the rows in the hot or staging table and the manifest unchanged; after
5, the rows are in verified files and the rerun only drops what is left. Late events for an archived
day land in a new hot partition and become the next part file on the next run.

Fault injection (tests): ``FLEETLENS_ARCHIVE_CRASH_AT=<step>`` (``after_export``, ``after_verify``,
``after_move``, ``after_commit``) SIGKILLs this process at that point of the first day it reaches.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import orjson

from fleetlens.archive import drop
from fleetlens.archive.export import export_missing
from fleetlens.archive.families import EVENTS, FAMILIES, Family
from fleetlens.archive.layout import LAST_RUN, PART_PREFIX, ArchiveTarget, day_dir
from fleetlens.archive.manifest import (
    ARCHIVED,
    RESTORED,
    Catalog,
    DayManifest,
    now_iso,
    rebuild_catalog,
    save_catalog,
    save_manifest,
)
from fleetlens.archive.reader import invalidate_views
from fleetlens.archive.verify import VerificationError, check_files, hot_rows_in_archive
from fleetlens.logsetup import get_logger
from fleetlens.store.client import Store

log = get_logger(__name__)
CRASH_ENV = "FLEETLENS_ARCHIVE_CRASH_AT"
MAX_ROUNDS = 5  # export/verify/move rounds for one day before giving up (late rows keep arriving)

# One archiver per process at a time (the scheduled one in `up` and a manual run share the store).
_run_lock = threading.Lock()

Progress = Callable[[str, str, dt.date, str], None]  # (table, step, day, detail)


@dataclass
class DayResult:
    """What happened to one (table, day)."""

    table: str
    date: str
    rows: int = 0  # rows added to the archive by this run
    bytes: int = 0
    parts: int = 0
    status: str = "archived"  # archived | nothing-new | skipped-restored | failed
    error: str | None = None


@dataclass
class RunResult:
    """One archiver run."""

    started_at: str
    finished_at: str | None = None
    cutoff: str | None = None
    seconds: float = 0.0
    days: list[DayResult] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows archived by this run."""
        return sum(d.rows for d in self.days)

    @property
    def bytes(self) -> int:
        """Parquet bytes written by this run."""
        return sum(d.bytes for d in self.days)

    @property
    def failed(self) -> list[DayResult]:
        """Days that could not be archived (their hot rows are untouched)."""
        return [d for d in self.days if d.status == "failed"]

    def to_json(self) -> dict:
        """Plain data (the ``_last_run.json`` file)."""
        return {**asdict(self), "rows": self.rows, "bytes": self.bytes}


def _export_metrics(result: RunResult, tables: list[str], cutoff: dt.date) -> None:
    """Prometheus: Parquet bytes written per table, and how far behind the archive is (oldest day left hot by a failure)."""
    from fleetlens.observe import metrics

    for day in result.days:
        if day.bytes:
            metrics.ARCHIVE_BYTES.labels(day.table).inc(day.bytes)
    for table in tables:
        failed = [dt.date.fromisoformat(d.date) for d in result.days if d.table == table and d.status == "failed"]
        metrics.ARCHIVE_LAG.labels(table).set((cutoff - min(failed)).days * 86_400 if failed else 0)


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        log.warning("archive fault injection: SIGKILL", step=step)
        os.kill(os.getpid(), signal.SIGKILL)


def cutoff_day(retention_days: int, now: dt.datetime | None = None) -> dt.date:
    """The first day that stays hot: days before it are archived."""
    today = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).date()
    return today - dt.timedelta(days=retention_days)


class Archiver:
    """Archives the days before a cutoff of every family from ``store`` into ``target``."""

    def __init__(self, store: Store, target: ArchiveTarget, *, restore_keep_days: int = 7,
                 families: tuple[Family, ...] = FAMILIES, progress: Progress | None = None) -> None:
        self.store = store
        self.target = target
        self.restore_keep_days = restore_keep_days
        self.families = families
        self.progress = progress or (lambda *a: None)

    def run(self, cutoff: dt.date, now: dt.datetime | None = None) -> RunResult:
        """Archive every day before ``cutoff``; a day that fails is reported and left hot."""
        with _run_lock:
            return self._run(cutoff, now or dt.datetime.now(dt.timezone.utc))

    def _run(self, cutoff: dt.date, now: dt.datetime) -> RunResult:
        t0 = time.monotonic()
        result = RunResult(started_at=now_iso(), cutoff=cutoff.isoformat())
        self.target.ensure_root()
        catalog, manifests = rebuild_catalog(self.target, [f.name for f in FAMILIES])
        for fam in self.families:
            drop.ensure_staging(self.store, fam)
        for fam in self.families:
            for day in drop.hot_partitions(self.store, fam, cutoff):
                m = manifests[fam.name].get(day)
                if m is not None and m.state == RESTORED and not self._restore_expired(m, now):
                    drop.unstage(self.store, fam, day)  # a restored day is hot: staged leftovers too
                    result.days.append(DayResult(fam.name, day.isoformat(), status="skipped-restored"))
                    continue
                try:
                    result.days.append(self.archive_day(fam, day, m, catalog))
                except Exception as exc:  # noqa: BLE001 - one bad day must not stop the others
                    log.exception("archiving failed", table=fam.name, day=str(day))
                    result.days.append(DayResult(fam.name, day.isoformat(), status="failed", error=str(exc)))
        _export_metrics(result, [f.name for f in self.families], cutoff)
        result.finished_at = now_iso()
        result.seconds = round(time.monotonic() - t0, 3)
        self.target.write_bytes(LAST_RUN, orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2))
        return result

    def _restore_expired(self, m: DayManifest, now: dt.datetime) -> bool:
        if not m.restored_at:
            return True
        restored = dt.datetime.fromisoformat(m.restored_at.replace("Z", "+00:00"))
        return now - restored >= dt.timedelta(days=self.restore_keep_days)

    def archive_day(self, fam: Family, day: dt.date, manifest: DayManifest | None, catalog: Catalog) -> DayResult:
        """Archive one day partition (see the module docstring for the steps)."""
        m = manifest or DayManifest(table=fam.name, date=day.isoformat())
        out = DayResult(fam.name, day.isoformat())
        self._sweep(fam, day, m)
        check_files(self.target, fam, day, m.parts)
        compressed, uncompressed = drop.partition_bytes(self.store, fam, day)
        for _ in range(MAX_ROUNDS):
            self.progress(fam.name, "export", day, "")
            part = export_missing(self.store, self.target, fam, day, m)
            _crash_point("after_export")
            new_parts = [*m.parts, part] if part else list(m.parts)
            if part:
                self.progress(fam.name, "verify", day, f"{part.rows:,} rows, {part.bytes / 1e6:,.1f} MB")
                check_files(self.target, fam, day, [part])
            n_hot, n_found = hot_rows_in_archive(self.store, self.target, fam, day, [p.file for p in new_parts])
            if n_found != n_hot:
                raise VerificationError(f"{fam.name} {day}: {n_hot - n_found} of {n_hot} hot rows are not in the archive")
            _crash_point("after_verify")
            self.progress(fam.name, "move", day, f"{n_hot:,} rows verified")
            drop.move_to_staging(self.store, fam, day)
            _crash_point("after_move")
            if drop.staged_rows(self.store, fam, day) != n_hot:
                # rows arrived between the verification and the move: they are staged now; archive them too
                m.parts = new_parts  # not committed: the next round's anti-join reads these files
                out.rows, out.bytes, out.parts = out.rows + (part.rows if part else 0), out.bytes + (part.bytes if part else 0), out.parts + bool(part)
                continue
            break
        else:
            raise VerificationError(f"{fam.name} {day}: rows kept arriving during {MAX_ROUNDS} rounds; will retry next run")
        if part:
            out.rows, out.bytes, out.parts = out.rows + part.rows, out.bytes + part.bytes, out.parts + 1
        m.parts = new_parts
        if not m.parts:  # the day had no row at all (an empty staging partition)
            drop.drop_staged(self.store, fam, day)
            out.status = "nothing-new"
            return out
        m.state, m.restored_at, m.verified_at = ARCHIVED, None, now_iso()
        m.hot_bytes += compressed
        m.hot_uncompressed_bytes += uncompressed
        self.progress(fam.name, "commit", day, "")
        save_manifest(self.target, m)
        catalog.put(m)
        save_catalog(self.target, catalog)
        invalidate_views()
        _crash_point("after_commit")
        self.progress(fam.name, "drop", day, "")
        drop.drop_staged(self.store, fam, day)
        if fam is EVENTS:
            drop.drop_rollups(self.store, day)
        if out.rows == 0:
            out.status = "nothing-new"
        return out

    def _sweep(self, fam: Family, day: dt.date, m: DayManifest) -> None:
        """Delete part files of the day no manifest lists (left by an interrupted export)."""
        listed = set(m.files)
        for info in self.target.list_dir(day_dir(fam.name, day)):
            name = info.base_name
            if name.startswith(PART_PREFIX) and name not in listed:
                log.info("removing an unlisted part file", file=f"{day_dir(fam.name, day)}/{name}")
                self.target.delete(f"{day_dir(fam.name, day)}/{name}")
