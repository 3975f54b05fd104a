"""Export: the rows of one day partition that the archive does not hold yet → one new Parquet file.

The store writes the file itself (``INSERT INTO FUNCTION file/s3(...) SELECT …``, zstd): a day is
streamed, never held in Python memory (measured against pyarrow in docs/archive.md). The rows are the
day's rows in the hot table and in its staging twin (left there by an interrupted run), deduplicated
by the family's key as ``FINAL`` would, minus keys already in the archived files of that day. So a
rerun after a crash, or late events for an archived day, add only what is missing: nothing is
archived twice. Rows are written clustered by hour, then in the table's key order
(:meth:`Family.file_order`): replayable in time order one hour at a time, fast to filter by kind/service. The file is then read back: its row count, time range, size and SHA-256 are what
the manifest records.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pyarrow.parquet as pq

from fleetlens.archive.families import Family
from fleetlens.archive.layout import ArchiveTarget, day_dir, files_glob, part_name
from fleetlens.archive.manifest import DayManifest, PartInfo, now_iso
from fleetlens.store.client import Store

EXPORT_TIMEOUT_S = 3600.0


def day_rows_sql(store: Store, fam: Family, day: dt.date, columns: str | None = None) -> str:
    """One row per key of ``day`` over the hot table and its staging twin (the surviving copy, as FINAL)."""
    cols = columns or fam.columns
    hot, staging = store.table(fam.name), store.table(fam.staging.name)
    keys = ", ".join(f"`{c}`" for c in fam.table.order_by)
    return (
        f"SELECT {cols} FROM (SELECT {fam.columns} FROM {hot} FINAL WHERE {fam.day_filter(day)} "
        f"UNION ALL SELECT {fam.columns} FROM {staging} FINAL WHERE {fam.day_filter(day)}) "
        f"ORDER BY {fam.latest_first()} LIMIT 1 BY {keys}"
    )


def archived_keys_sql(target: ArchiveTarget, fam: Family, day: dt.date, files: list[str]) -> str:
    """The keys held by ``files`` of ``day``."""
    keys = ", ".join(f"`{c}`" for c in fam.table.order_by)
    return f"SELECT {keys} FROM {target.table_function(files_glob(fam.name, day, files), fam.structure)}"


def export_missing(store: Store, target: ArchiveTarget, fam: Family, day: dt.date, manifest: DayManifest) -> PartInfo | None:
    """Write the day's rows missing from the archive as the next part; None when nothing is missing."""
    rel = f"{day_dir(fam.name, day)}/{part_name(len(manifest.parts))}"
    rows = day_rows_sql(store, fam, day)
    where = f"WHERE {fam.key} NOT IN ({archived_keys_sql(target, fam, day, manifest.files)})" if manifest.parts else ""
    store.command(
        f"INSERT INTO FUNCTION {target.table_function(rel, fam.structure)} "
        f"SELECT {fam.columns} FROM ({rows}) {where} ORDER BY {fam.file_order()} SETTINGS {target.write_settings()}",
        timeout_s=EXPORT_TIMEOUT_S,
    )
    info = read_back(target, rel, fam.time_column)
    if info is None or info.rows == 0:
        target.delete(rel)
        return None
    return info


def read_back(target: ArchiveTarget, rel: str, time_column: str) -> PartInfo | None:
    """Size, SHA-256, row count and time range of the stored file, read from the archive (None: missing)."""
    path = target.path(rel)
    digest, size = hashlib.sha256(), 0
    try:
        with target.fs.open_input_stream(path) as f:
            while chunk := f.read(8 << 20):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return None
    with target.fs.open_input_file(path) as f:
        meta = pq.ParquetFile(f).metadata
    lo, hi = _time_range(meta, time_column)
    return PartInfo(file=rel.rsplit("/", 1)[1], rows=meta.num_rows, bytes=size, sha256=digest.hexdigest(),
                    time_min=lo, time_max=hi, exported_at=now_iso())


def _time_range(meta: pq.FileMetaData, column: str) -> tuple[str | None, str | None]:
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if column not in names or meta.num_rows == 0:
        return None, None
    idx = names.index(column)
    lows, highs = [], []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(idx).statistics
        if stats is not None and stats.has_min_max:
            lows.append(stats.min)
            highs.append(stats.max)
    fmt = lambda v: v.isoformat(timespec="milliseconds").replace("+00:00", "Z") if hasattr(v, "isoformat") else str(v)  # noqa: E731
    return (fmt(min(lows)), fmt(max(highs))) if lows else (None, None)
