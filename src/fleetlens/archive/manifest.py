"""Manifests: what one archived day partition holds, and the catalog of all of them.

``table=<t>/date=<d>/_manifest.json`` is the truth about a day: only the files it lists belong to
the archive (a file without an entry is the leftover of an interrupted run and is deleted by the
next one). It is written only after its files were read back and verified and the hot rows were
moved out of the queried table, so a day is either hot or archived for queries, never both.
``_catalog.json`` lists the archived days and their files for the query path (one read instead of
one per day); it is derived from the manifests and rebuilt at the start of every run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from fleetlens.archive.layout import CATALOG, MANIFEST, ArchiveTarget, day_dir

FORMAT = 1
ARCHIVED, RESTORED = "archived", "restored"


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class PartInfo:
    """One Parquet file of a day: rows, bytes and SHA-256 as read back from the archive."""

    file: str
    rows: int
    bytes: int
    sha256: str
    time_min: str | None
    time_max: str | None
    exported_at: str


@dataclass
class DayManifest:
    """One day partition of one table in the archive."""

    table: str
    date: str
    state: str = ARCHIVED  # archived | restored (the rows are back in the hot store)
    parts: list[PartInfo] = field(default_factory=list)
    hot_bytes: int = 0  # compressed bytes the hot store used for these rows
    hot_uncompressed_bytes: int = 0
    verified_at: str | None = None
    restored_at: str | None = None
    format: int = FORMAT

    @property
    def day(self) -> dt.date:
        """The day as a date."""
        return dt.date.fromisoformat(self.date)

    @property
    def rows(self) -> int:
        """Rows over every part."""
        return sum(p.rows for p in self.parts)

    @property
    def bytes(self) -> int:
        """Parquet bytes over every part."""
        return sum(p.bytes for p in self.parts)

    @property
    def files(self) -> list[str]:
        """File names of the parts, in order."""
        return [p.file for p in self.parts]

    def to_json(self) -> bytes:
        """The manifest file's contents (with derived totals for readers that do not sum themselves)."""
        data = asdict(self)
        times = [t for p in self.parts for t in (p.time_min, p.time_max) if t]
        data.update(rows=self.rows, bytes=self.bytes, time_min=min(times) if times else None,
                    time_max=max(times) if times else None)
        return orjson.dumps(data, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> DayManifest:
        """Parse a manifest file (derived totals ignored)."""
        data: dict[str, Any] = orjson.loads(raw)
        if data.get("format") != FORMAT:
            raise ValueError(f"manifest format {data.get('format')!r} is not {FORMAT}")
        parts = [PartInfo(**p) for p in data.pop("parts", [])]
        known = {f for f in cls.__dataclass_fields__}
        return cls(parts=parts, **{k: v for k, v in data.items() if k in known and k != "parts"})


def manifest_path(table: str, day: dt.date) -> str:
    """Relative path of a day's manifest."""
    return f"{day_dir(table, day)}/{MANIFEST}"


def load_manifest(target: ArchiveTarget, table: str, day: dt.date) -> DayManifest | None:
    """The day's manifest, or None when the day was never archived."""
    raw = target.read_bytes(manifest_path(table, day))
    return DayManifest.from_json(raw) if raw is not None else None


def save_manifest(target: ArchiveTarget, manifest: DayManifest) -> None:
    """Write the manifest atomically (the commit point of an archive step)."""
    target.write_bytes(manifest_path(manifest.table, manifest.day), manifest.to_json())


def scan_manifests(target: ArchiveTarget, table: str) -> dict[dt.date, DayManifest]:
    """Every manifest of ``table``, by listing ``table=<t>/`` (one request per day: for runs, not queries)."""
    out = {}
    for info in target.list_dir(f"table={table}"):
        name = info.base_name
        if not name.startswith("date="):
            continue
        try:
            day = dt.date.fromisoformat(name[5:])
        except ValueError:
            continue
        m = load_manifest(target, table, day)
        if m is not None:
            out[day] = m
    return out


@dataclass
class Catalog:
    """Archived (not restored) days per table with their files: what queries read."""

    tables: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # table -> date -> files
    updated_at: str | None = None

    def days(self, table: str) -> dict[dt.date, list[str]]:
        """Archived days of ``table`` and their files."""
        return {dt.date.fromisoformat(d): files for d, files in self.tables.get(table, {}).items()}

    def put(self, manifest: DayManifest) -> None:
        """Record ``manifest`` (drop the day when it is restored or has no file)."""
        days = self.tables.setdefault(manifest.table, {})
        if manifest.state == ARCHIVED and manifest.parts:
            days[manifest.date] = manifest.files
        else:
            days.pop(manifest.date, None)


def load_catalog(target: ArchiveTarget) -> Catalog:
    """The catalog (empty when there is none yet)."""
    raw = target.read_bytes(CATALOG)
    if raw is None:
        return Catalog()
    data = orjson.loads(raw)
    return Catalog(tables=data.get("tables", {}), updated_at=data.get("updated_at"))


def save_catalog(target: ArchiveTarget, catalog: Catalog) -> None:
    """Write the catalog atomically."""
    catalog.updated_at = now_iso()
    target.write_bytes(CATALOG, orjson.dumps({"tables": catalog.tables, "updated_at": catalog.updated_at},
                                             option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def rebuild_catalog(target: ArchiveTarget, tables: list[str]) -> tuple[Catalog, dict[str, dict[dt.date, DayManifest]]]:
    """The catalog recomputed from the manifests (and saved), with the manifests read."""
    catalog, manifests = Catalog(), {}
    for table in tables:
        manifests[table] = scan_manifests(target, table)
        catalog.tables[table] = {}
        for m in manifests[table].values():
            catalog.put(m)
    save_catalog(target, catalog)
    return catalog, manifests
