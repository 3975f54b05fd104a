"""The table families the archive holds, and the SQL fragments every archive step shares.

events, metrics and rejections are partitioned by UTC day of their time column; each day
partition becomes ``table=<name>/date=<day>/part-*.parquet``. The derived tables stay in the
store: ``action_index`` (one small row per action; it is what finds an archived trace's days) is
kept, and the partition of an archived day of the rollups of events (``users_1m``, ``payment_attempts``)
is dropped with it: queries reaching archived days compute the rollup from the events themselves (see
docs/archive.md). The events' projections are part of its parts and need nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fleetlens.store.tables import (
    EVENTS_TABLE,
    METRICS_TABLE,
    PAYMENT_ATTEMPTS_TABLE,
    REJECTIONS_TABLE,
    USERS_1M_TABLE,
    TableDef,
    archive_staging,
    column_structure,
)


@dataclass(frozen=True)
class Family:
    """One archived table: its definition, its time column and its row identity."""

    table: TableDef
    time_column: str

    @property
    def name(self) -> str:
        """Table name, also the ``table=`` directory."""
        return self.table.name

    @property
    def staging(self) -> TableDef:
        """The staging twin a day partition moves into before it is dropped."""
        return archive_staging(self.table)

    @property
    def key(self) -> str:
        """The row identity (the ReplacingMergeTree sorting key) as a tuple expression."""
        return "(" + ", ".join(f"`{c}`" for c in self.table.order_by) + ")"

    @property
    def columns(self) -> str:
        """Every column, quoted, in table order."""
        return ", ".join(f"`{c}`" for c in self.table.column_names)

    @property
    def structure(self) -> str:
        """Column names and types for reading the Parquet files (the hot table's types)."""
        return column_structure(self.table)

    def day_filter(self, day: dt.date) -> str:
        """Rows of one UTC day (``toDate(time) = 'YYYY-MM-DD'``: partition pruning applies)."""
        return f"toDate(`{self.time_column}`) = toDate('{day.isoformat()}')"

    def range_filter(self, start_ms: int, end_ms: int) -> str:
        """Rows with ``start <= time < end`` (epoch ms; integers only, so safe to inline)."""
        t = f"`{self.time_column}`"
        return (f"{t} >= fromUnixTimestamp64Milli({int(start_ms)}, 'UTC') "
                f"AND {t} < fromUnixTimestamp64Milli({int(end_ms)}, 'UTC')")

    def file_order(self) -> str:
        """ORDER BY of an archive file: the hour, then the table's key. Clustered by hour, a file can be
        replayed in time order holding one hour in memory; within the hour, the key order keeps the
        kind/service filters of queries as fast as the hot table's order (measured in docs/archive.md)."""
        return ", ".join([f"toStartOfHour(`{self.time_column}`)", *(f"`{c}`" for c in self.table.order_by)])

    def latest_first(self) -> str:
        """ORDER BY putting the surviving copy of a key first (LIMIT 1 BY keeps it): as FINAL would."""
        order = ", ".join(f"`{c}`" for c in self.table.order_by)
        return order + (f", `{self.table.version_column}` DESC" if self.table.version_column else "")


EVENTS = Family(EVENTS_TABLE, "ts")
METRICS = Family(METRICS_TABLE, "ts")
REJECTIONS = Family(REJECTIONS_TABLE, "received_at")
FAMILIES: tuple[Family, ...] = (EVENTS, METRICS, REJECTIONS)
BY_NAME = {f.name: f for f in FAMILIES}

# Rollups of events whose partition of an archived day is dropped with the events' day.
ROLLUPS_OF_EVENTS: tuple[TableDef, ...] = (USERS_1M_TABLE, PAYMENT_ATTEMPTS_TABLE)


def partition_id(day: dt.date) -> str:
    """ClickHouse partition id of a ``toDate`` partition: ``YYYYMMDD``."""
    return day.strftime("%Y%m%d")
