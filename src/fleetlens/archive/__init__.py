"""The archive: day partitions older than the retention as zstd Parquet in a directory or on S3.

``archiver`` runs export → verify → move → commit → drop per day; ``reader`` gives queries the hot ∪
archive relation and reprocessing the archived events as Arrow; ``restore`` brings days back;
``status`` says what is where. See docs/archive.md.
"""

from fleetlens.archive.reader import iter_archived_events

__all__ = ["iter_archived_events"]
