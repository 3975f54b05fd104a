"""``fleetlens archive status``: what is hot, what is archived, sizes, compression, the last run."""

from __future__ import annotations

from typing import Any

import orjson

from fleetlens.archive.families import FAMILIES
from fleetlens.archive.layout import LAST_RUN, ArchiveTarget
from fleetlens.archive.manifest import scan_manifests
from fleetlens.store.client import Store
from fleetlens.store.tables import local_name


def hot_days(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Per family: one row per hot day partition (rows as stored, compressed and uncompressed bytes)."""
    ctx = store.render_context
    parts = f"cluster('{ctx.cluster}', system.parts)" if ctx.cluster else "system.parts"
    out = {}
    for fam in FAMILIES:
        tbl = store.query_arrow(
            f"SELECT partition AS date, sum(rows) AS rows, sum(data_compressed_bytes) AS bytes, "
            f"sum(data_uncompressed_bytes) AS uncompressed_bytes FROM {parts} "
            "WHERE database = {db:String} AND table = {t:String} AND active GROUP BY partition HAVING rows > 0 ORDER BY partition",
            {"db": store.database, "t": local_name(fam.table, ctx)},
        )
        out[fam.name] = tbl.to_pylist() if tbl.num_rows else []
    return out


def archive_summary(store: Store, target: ArchiveTarget) -> dict[str, Any]:
    """Hot days, archived days (rows, Parquet bytes, compression), totals and the last run, as plain data."""
    archived: dict[str, list[dict[str, Any]]] = {}
    totals: dict[str, dict[str, Any]] = {}
    for fam in FAMILIES:
        rows = []
        for day, m in sorted(scan_manifests(target, fam.name).items()):
            rows.append({"date": m.date, "state": m.state, "rows": m.rows, "files": len(m.parts), "bytes": m.bytes,
                         "hot_bytes": m.hot_bytes, "hot_uncompressed_bytes": m.hot_uncompressed_bytes,
                         "verified_at": m.verified_at, "restored_at": m.restored_at})
        archived[fam.name] = rows
        parquet = sum(r["bytes"] for r in rows)
        raw = sum(r["hot_uncompressed_bytes"] for r in rows)
        hot = sum(r["hot_bytes"] for r in rows)
        totals[fam.name] = {
            "days": len(rows), "rows": sum(r["rows"] for r in rows), "bytes": parquet,
            "compression_ratio": round(raw / parquet, 2) if parquet else None,  # uncompressed columns / Parquet
            "vs_hot": round(hot / parquet, 2) if parquet else None,  # hot store's compressed bytes / Parquet
        }
    raw_last = target.read_bytes(LAST_RUN)
    return {"target": target.describe(), "hot": hot_days(store), "archived": archived, "totals": totals,
            "last_run": orjson.loads(raw_last) if raw_last else None}
