"""Where the archive lives and how its files are named, read and written.

Hive layout, the same on S3 and in a local directory::

    <root>/table=<family>/date=<YYYY-MM-DD>/part-00000.parquet
    <root>/table=<family>/date=<YYYY-MM-DD>/_manifest.json
    <root>/_catalog.json          archived days and their files (derived from the manifests)
    <root>/_last_run.json         what the last archiver run did

An :class:`ArchiveTarget` wraps a ``pyarrow.fs`` file system (manifests, checksums, listing) and
renders the ClickHouse table functions (``file(...)`` / ``s3(...)``) that read and write the Parquet
files from SQL, so the store itself streams the data in both directions.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

if TYPE_CHECKING:
    from fleetlens.settings import Settings

PART_PREFIX = "part-"
MANIFEST = "_manifest.json"
CATALOG = "_catalog.json"
LAST_RUN = "_last_run.json"

# Parquet as written by ClickHouse: zstd; no Bloom filters (they made files ~35 % larger here and
# fleetlens reads whole days); strings as UTF-8 strings, not binary.
WRITE_SETTINGS = {
    "output_format_parquet_compression_method": "'zstd'",
    "output_format_parquet_write_bloom_filter": 0,
    "output_format_parquet_string_as_string": 1,
}


def sql_str(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def day_dir(table: str, day: dt.date) -> str:
    """``table=<table>/date=<YYYY-MM-DD>``."""
    return f"table={table}/date={day.isoformat()}"


def part_name(seq: int) -> str:
    """``part-00000.parquet``: parts of a day are numbered in the order they were archived."""
    return f"{PART_PREFIX}{seq:05d}.parquet"


@dataclass(frozen=True)
class S3Credentials:
    """AWS credentials from the environment (None fields: not set)."""

    access_key: str | None
    secret_key: str | None
    session_token: str | None

    @classmethod
    def from_env(cls) -> S3Credentials:
        """AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN."""
        env = os.environ.get
        return cls(env("AWS_ACCESS_KEY_ID") or None, env("AWS_SECRET_ACCESS_KEY") or None, env("AWS_SESSION_TOKEN") or None)


@dataclass(frozen=True)
class ArchiveTarget:
    """The archive's root: a local directory or ``bucket/prefix`` on an S3-protocol server."""

    kind: str  # "local" | "s3"
    fs: pafs.FileSystem
    root: str  # file-system path of the root: an absolute directory, or "bucket/prefix"
    url_root: str  # what ClickHouse table functions address: the directory, or http(s)://endpoint/bucket/prefix
    credentials: S3Credentials | None = None

    def path(self, rel: str) -> str:
        """File-system path of ``rel`` (relative to the root)."""
        return f"{self.root}/{rel}" if rel else self.root

    def url(self, rel: str) -> str:
        """What a table function addresses for ``rel``."""
        return f"{self.url_root}/{rel}"

    def describe(self) -> str:
        """For humans: ``/data/archive`` or ``s3://bucket/prefix``."""
        return self.root if self.kind == "local" else f"s3://{self.root}"

    def table_function(self, rel: str, structure: str | None = None) -> str:
        """``file(...)`` or ``s3(...)`` over ``rel`` (globs like ``{a,b}`` allowed), as Parquet."""
        args = [sql_str(self.url(rel))]
        if self.kind == "s3":
            creds = self.credentials
            if creds and creds.access_key and creds.secret_key:
                args += [sql_str(creds.access_key), sql_str(creds.secret_key)]
                if creds.session_token:
                    args.append(sql_str(creds.session_token))
            # without keys the server's own credential chain applies (instance role, its environment)
        args.append("'Parquet'")
        if structure:
            args.append(sql_str(structure))
        return f"{'s3' if self.kind == 's3' else 'file'}({', '.join(args)})"

    def write_settings(self) -> str:
        """SETTINGS of an ``INSERT INTO FUNCTION`` writing one Parquet file (an existing file is replaced)."""
        truncate = "s3_truncate_on_insert" if self.kind == "s3" else "engine_file_truncate_on_insert"
        return ", ".join(f"{k} = {v}" for k, v in {**WRITE_SETTINGS, truncate: 1}.items())

    # --- small file-system helpers (manifests, catalogs) -------------------------------------

    def read_bytes(self, rel: str) -> bytes | None:
        """Contents of ``rel``, or None when it does not exist."""
        try:
            with self.fs.open_input_stream(self.path(rel)) as f:
                return f.read()
        except (FileNotFoundError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) or "not exist" in str(exc).lower() or "not found" in str(exc).lower():
                return None
            raise

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` with ``data`` atomically: readers see the old or the new contents, never a mix.

        S3 PUTs are atomic; locally the bytes go to a temporary file, fsynced, then renamed.
        """
        path = self.path(rel)
        if self.kind == "local":
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            return
        with self.fs.open_output_stream(path) as f:
            f.write(data)

    def delete(self, rel: str) -> None:
        """Delete ``rel`` if it exists."""
        try:
            self.fs.delete_file(self.path(rel))
        except FileNotFoundError:
            pass

    def list_dir(self, rel: str) -> list[pafs.FileInfo]:
        """Entries directly under ``rel`` (empty when it does not exist)."""
        try:
            return self.fs.get_file_info(pafs.FileSelector(self.path(rel), allow_not_found=True))
        except FileNotFoundError:
            return []

    def ensure_root(self) -> None:
        """Create the root directory (local) or check the bucket answers (S3)."""
        if self.kind == "local":
            os.makedirs(self.root, exist_ok=True)
            return
        bucket = self.root.split("/", 1)[0]
        info = self.fs.get_file_info(bucket)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"S3 bucket {bucket!r} does not exist (or cannot be seen with these credentials)")


def target_from_settings(settings: Settings) -> ArchiveTarget:
    """The archive target ``settings.archive`` describes."""
    a = settings.archive
    if a.target == "local":
        root = str(settings.archive_dir.resolve())
        return ArchiveTarget("local", pafs.LocalFileSystem(), root, root)
    if not a.bucket:
        raise ValueError("archive.target is s3 but archive.bucket is not set (FLEETLENS_ARCHIVE__BUCKET)")
    creds = S3Credentials.from_env()
    endpoint = (a.endpoint or "").rstrip("/")
    scheme = "http" if endpoint.startswith("http://") else "https"
    fs = pafs.S3FileSystem(
        access_key=creds.access_key, secret_key=creds.secret_key, session_token=creds.session_token,
        region=a.region, endpoint_override=endpoint.split("://", 1)[-1] if endpoint else None, scheme=scheme,
    )
    prefix = a.prefix.strip("/")
    root = f"{a.bucket}/{prefix}" if prefix else a.bucket
    base = endpoint if endpoint else f"https://s3.{a.region}.amazonaws.com"
    return ArchiveTarget("s3", fs, root, f"{base}/{root}", creds)


def files_glob(table: str, day: dt.date, files: list[str]) -> str:
    """Relative path naming exactly ``files`` of one day (a ``{a,b}`` alternation when several)."""
    if not files:
        raise ValueError("no files")
    stems = [f[: -len(".parquet")] if f.endswith(".parquet") else f for f in files]
    name = f"{stems[0]}.parquet" if len(stems) == 1 else "{" + ",".join(stems) + "}.parquet"
    return f"{day_dir(table, day)}/{name}"
