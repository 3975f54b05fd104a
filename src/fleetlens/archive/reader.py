"""Reading the archive: the relation queries use for hot ∪ archive, and Arrow batches for reprocessing.

:class:`ArchiveView` knows which days are archived (the catalog, cached for ``catalog_ttl_s``) and
renders a time range of a table family as one SQL relation:

* no archived day in the range: the hot table itself (``events``), unchanged;
* otherwise ``(SELECT … FROM events WHERE <range> UNION ALL SELECT … FROM file/s3(<that day's
  files>) WHERE <range> …)``: one table function per archived day of the range, naming exactly the
  day's listed files, so only the needed date partitions are read. The hot table stays in the union
  because late events of an archived day live there until the next run archives them; the
  archiver guarantees a row is never in both (see docs/archive.md).

The rollups of events (``users_1m``, ``payment_attempts``: ``store/tables.py`` ``Rollup``) have no archive
of their own: for a range reaching an archived day a rollup is computed from the events relation with the
same SELECT its materialized view runs, so the answer is the same.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fleetlens.archive.families import BY_NAME, EVENTS
from fleetlens.archive.layout import ArchiveTarget, day_dir, files_glob, target_from_settings
from fleetlens.archive.manifest import Catalog, load_catalog
from fleetlens.store.tables import Rollup

if TYPE_CHECKING:
    from fleetlens.settings import Settings
    from fleetlens.store.client import Store

DAY_MS = 86_400_000
_views: weakref.WeakSet[ArchiveView] = weakref.WeakSet()


def invalidate_views() -> None:
    """Make every ArchiveView of this process read the catalog again (called after the catalog changes)."""
    for view in list(_views):
        view.invalidate()


def days_between(start_ms: int, end_ms: int) -> list[dt.date]:
    """UTC days touched by [start, end)."""
    if end_ms <= start_ms:
        return []
    first = dt.date(1970, 1, 1) + dt.timedelta(days=start_ms // DAY_MS)
    last = dt.date(1970, 1, 1) + dt.timedelta(days=(end_ms - 1) // DAY_MS)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class Relation:
    """A FROM-clause relation and where its rows come from."""

    sql: str
    archive_days: list[dt.date] = field(default_factory=list)
    hot_days: list[dt.date] = field(default_factory=list)


class ArchiveView:
    """The archive as the query path sees it: archived days (cached) and hot ∪ archive relations."""

    def __init__(self, target: ArchiveTarget, ttl_s: float = 10.0) -> None:
        self.target = target
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._loaded = 0.0
        _views.add(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveView:
        """The view of the archive ``settings.archive`` describes."""
        return cls(target_from_settings(settings), settings.archive.catalog_ttl_s)

    def catalog(self) -> Catalog:
        """The catalog, read again when older than ``ttl_s``."""
        with self._lock:
            if self._catalog is None or time.monotonic() - self._loaded > self.ttl_s:
                self._catalog = load_catalog(self.target)
                self._loaded = time.monotonic()
            return self._catalog

    def invalidate(self) -> None:
        """Forget the cached catalog (the archiver of this process changed it)."""
        with self._lock:
            self._catalog = None

    def relation(self, store: Store, table: str, start_ms: int, end_ms: int, final: bool = False) -> Relation:
        """``table`` over [start, end) as hot ∪ archive (see the module docstring)."""
        days = days_between(start_ms, end_ms)
        archived = self.catalog().days(table)
        in_archive = [d for d in days if d in archived]
        hot = [d for d in days if d not in archived]
        plain = f"{table} FINAL" if final else table
        if not in_archive:
            return Relation(plain, [], hot)
        fam = BY_NAME[table]
        where = fam.range_filter(start_ms, end_ms)
        branches = [f"SELECT {fam.columns} FROM {store.table(table)}{' FINAL' if final else ''} WHERE {where}"]
        for day in in_archive:
            fn = self.target.table_function(files_glob(table, day, archived[day]), fam.structure)
            branches.append(f"SELECT {fam.columns} FROM {fn} WHERE {where}")
        return Relation("(" + " UNION ALL ".join(branches) + ")", in_archive, hot)

    def rollup_relation(self, store: Store, rollup: Rollup, start_ms: int, end_ms: int, final: bool = False) -> Relation:
        """The rows of ``rollup`` derived from the events with ``start <= ts < end``: the rollup table while every
        day of that range is hot (the caller filters it to its range), else the rollup computed from
        events ∪ archive over that range."""
        events = self.relation(store, EVENTS.name, start_ms, end_ms, final)
        if not events.archive_days:
            return Relation(rollup.name, [], events.hot_days)
        return Relation("(" + rollup.select.format(source=events.sql) + ")", events.archive_days, events.hot_days)


HOUR_MS = 3_600_000
_ORDER = [(c, "ascending") for c in ("ts", "kind", "service", "event_id")]


def _hours(table: pa.Table) -> pa.Array:
    ms = pc.cast(pc.cast(table.column("ts"), pa.timestamp("ms", "UTC")), pa.int64())
    return pc.divide(ms, HOUR_MS)  # integer division (ts after 1970)


def _ordered_hours(main: Iterator[pa.Table], extra: pa.Table | None, batch_rows: int) -> Iterator[pa.Table]:
    """Rows of an hour-clustered stream (plus ``extra`` rows, e.g. late parts) in (ts, kind, service, event_id)
    order, holding one hour of the stream in memory: an hour is emitted once the stream moved past it."""
    pending: list[pa.Table] = [extra] if extra is not None and extra.num_rows else []

    def flush(before_hour: int | None) -> Iterator[pa.Table]:
        if not pending:
            return
        rows = pa.concat_tables(pending)
        pending.clear()
        if before_hour is not None:
            done = pc.less(_hours(rows), before_hour)
            rest = rows.filter(pc.invert(done))
            rows = rows.filter(done)
            if rest.num_rows:
                pending.append(rest)
        rows = rows.sort_by(_ORDER)
        for i in range(0, rows.num_rows, batch_rows):
            yield rows.slice(i, batch_rows)

    for table in main:
        if table.num_rows:
            pending.append(table)
            yield from flush(pc.max(_hours(table)).as_py())
    yield from flush(None)


def iter_archived_events(settings: Settings, start: dt.datetime, end: dt.datetime, *,
                         batch_rows: int = 65_536) -> Iterator[pa.Table]:
    """Archived events with ``start <= ts < end`` as Arrow tables (the hot table's columns) in event-time order
    (ts, then kind, service, event_id). Reads the Parquet files directly (no store needed); holds about one
    hour of events in memory, plus a day's late parts (small: events that arrived after the day was archived)."""
    view = ArchiveView.from_settings(settings)
    target = view.target
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    archived = load_catalog(target).days(EVENTS.name)
    lo_ts = pa.scalar(lo, pa.timestamp("ms", "UTC"))
    hi_ts = pa.scalar(hi, pa.timestamp("ms", "UTC"))

    def in_range(table: pa.Table) -> pa.Table:
        ts = table.column("ts").cast(pa.timestamp("ms", "UTC"))
        return table.filter(pc.and_(pc.greater_equal(ts, lo_ts), pc.less(ts, hi_ts)))

    def stream(path: str) -> Iterator[pa.Table]:
        with target.fs.open_input_file(path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows):
                yield in_range(pa.Table.from_batches([batch]))

    for day in days_between(lo, hi):
        paths = [target.path(f"{day_dir(EVENTS.name, day)}/{name}") for name in archived.get(day, [])]
        if not paths:
            continue
        late = [table for path in paths[1:] for table in stream(path)]
        extra = pa.concat_tables(late) if late else None
        yield from _ordered_hours(stream(paths[0]), extra, batch_rows)
