"""Verification: the archive holds every row of a day partition, and its files are the recorded ones.

Two checks, both reading the archive back (not trusting what was written):

* :func:`check_files`: each listed file exists with the manifest's size, SHA-256 and row count;
* :func:`hot_rows_in_archive`: every key of the day's hot (and staging) rows is found in the
  archived files of that day; the count of found keys must equal the hot partition's row count.

Only a day that passes both is moved out of the hot table and dropped.
"""

from __future__ import annotations

import datetime as dt

from fleetlens.archive.export import archived_keys_sql, day_rows_sql, read_back
from fleetlens.archive.families import Family
from fleetlens.archive.layout import ArchiveTarget, day_dir
from fleetlens.archive.manifest import PartInfo
from fleetlens.store.client import Store

VERIFY_TIMEOUT_S = 3600.0


class VerificationError(RuntimeError):
    """The archive does not hold what it must: nothing is dropped."""


def check_files(target: ArchiveTarget, fam: Family, day: dt.date, parts: list[PartInfo]) -> None:
    """Every part exists with its recorded size, checksum and row count, else VerificationError."""
    for part in parts:
        got = read_back(target, f"{day_dir(fam.name, day)}/{part.file}", fam.time_column)
        if got is None:
            raise VerificationError(f"{fam.name} {day}: {part.file} is missing from the archive")
        if (got.bytes, got.sha256, got.rows) != (part.bytes, part.sha256, part.rows):
            raise VerificationError(
                f"{fam.name} {day}: {part.file} is {got.bytes} bytes, sha256 {got.sha256[:12]}, {got.rows} rows; "
                f"expected {part.bytes}, {part.sha256[:12]}, {part.rows}"
            )


def hot_rows_in_archive(store: Store, target: ArchiveTarget, fam: Family, day: dt.date, files: list[str]) -> tuple[int, int]:
    """(rows of the day in the hot and staging tables, how many of them the archived ``files`` hold)."""
    keys = ", ".join(f"`{c}`" for c in fam.table.order_by)
    rows = day_rows_sql(store, fam, day, columns=keys)
    if not files:
        n = store.query_scalar(f"SELECT count() FROM ({rows})", timeout_s=VERIFY_TIMEOUT_S)
        return int(n or 0), 0
    found = store.query_arrow(
        f"SELECT count() AS n, countIf({fam.key} IN ({archived_keys_sql(target, fam, day, files)})) AS found FROM ({rows})",
        timeout_s=VERIFY_TIMEOUT_S,
    ).to_pylist()[0]
    return int(found["n"]), int(found["found"])
