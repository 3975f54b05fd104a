"""The archive is open Parquet: pyarrow.dataset (on S3) and DuckDB (local directory) read it without fleetlens,
with the schema docs/archive.md documents."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from fleetlens.archive.archiver import Archiver
from fleetlens.archive.layout import target_from_settings
from fleetlens.settings import Settings
from fleetlens.store.client import open_store

from tests.archive.conftest import DAYS, S3_ENV, load, s3_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "archive.md"


def documented_schema(table: str) -> list[tuple[str, str, bool]]:
    """(column, Arrow type, nullable) rows of the table between ``<!-- schema:<table> -->`` markers in docs/archive.md."""
    text = DOC.read_text()
    block = re.search(rf"<!-- schema:{table} -->(.*?)<!-- /schema:{table} -->", text, re.S)
    assert block, f"docs/archive.md has no schema block for {table}"
    rows = []
    for line in block.group(1).splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] not in ("column", "") and not set(cells[0]) <= {"-", ":"}:
            rows.append((cells[0], cells[1], cells[2] == "yes"))
    return rows


def arrow_schema(schema: pa.Schema, skip: tuple[str, ...] = ("date", "table")) -> list[tuple[str, str, bool]]:
    return [(f.name, str(f.type).replace("map<string, string ('attrs')>", "map<string, string>"), f.nullable)
            for f in schema if f.name not in skip]


def _archive(settings: Settings, decoded) -> None:
    store = open_store(settings)
    try:
        load(store, decoded)
        assert not Archiver(store, target_from_settings(settings)).run(DAYS[2]).failed
    finally:
        store.close()


def _archived(decoded_table: pa.Table) -> pa.Table:
    day = pc.cast(pc.cast(decoded_table.column("ts"), pa.timestamp("ms", "UTC")), pa.date32())
    return decoded_table.filter(pc.less(day, pa.scalar(DAYS[2], pa.date32())))


def test_pyarrow_dataset_reads_the_s3_archive(tmp_path, moto, s3_bucket, decoded):
    settings = s3_settings(tmp_path, moto, s3_bucket)
    _archive(settings, decoded)
    fs = pafs.S3FileSystem(access_key=S3_ENV["AWS_ACCESS_KEY_ID"], secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
                           endpoint_override=moto.url.removeprefix("http://"), scheme="http", region="us-east-1")
    for table, source in (("events", decoded.events), ("metrics", decoded.metrics)):
        dataset = ds.dataset(f"{s3_bucket}/fleet/archive/table={table}", filesystem=fs, format="parquet", partitioning="hive")
        got = dataset.to_table()
        want = _archived(source)
        assert got.num_rows == want.num_rows > 0
        assert sorted(got.column("event_id").to_pylist()) == sorted(want.column("event_id").to_pylist())
        assert sorted(set(map(str, got.column("date").to_pylist()))) == [str(DAYS[0]), str(DAYS[1])]
        assert arrow_schema(got.schema) == documented_schema(table)
        # a partition filter reads one day
        one = dataset.to_table(filter=ds.field("date") == str(DAYS[1]) if pa.types.is_string(dataset.schema.field("date").type)
                               else ds.field("date") == pa.scalar(DAYS[1]))
        assert 0 < one.num_rows < got.num_rows


def test_duckdb_reads_the_local_archive(tmp_path, decoded):
    settings = Settings(data_dir=tmp_path / "data")  # the default target: data_dir/archive, same layout
    _archive(settings, decoded)
    root = settings.archive_dir
    assert (root / f"table=events/date={DAYS[0]}/part-00000.parquet").is_file()
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{root}/table=events/*/part-*.parquet', hive_partitioning = true)")
    got = rel.arrow()
    got = got.read_all() if hasattr(got, "read_all") else got
    want = _archived(decoded.events)
    assert got.num_rows == want.num_rows
    assert sorted(got.column("event_id").to_pylist()) == sorted(want.column("event_id").to_pylist())
    errors = con.sql(f"SELECT count(*) FROM read_parquet('{root}/table=events/*/part-*.parquet') WHERE level = 'error'").fetchall()[0][0]
    assert errors == pc.sum(pc.equal(want.column("level"), "error")).as_py()
    types = {row[0]: row[1] for row in con.sql(f"DESCRIBE SELECT * FROM read_parquet('{root}/table=events/*/part-*.parquet')").fetchall()}
    assert types["ts"] == "TIMESTAMP WITH TIME ZONE" and types["attrs"] == "MAP(VARCHAR, VARCHAR)"
