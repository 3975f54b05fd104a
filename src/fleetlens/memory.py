"""Arrow's memory pool for the process (the ``arrow_memory_pool`` setting).

pyarrow allocates its buffers from mimalloc by default. In fleetlens' hot loops (decode, the
detector's frames, inserts: large buffers freed and allocated again every micro-batch) mimalloc
hands pages back to the kernel and takes fresh ones, which the kernel zeroes on first touch:
`clear_page_erms` under `mi_page_free_list_extend` was 4–10 % of the CPU in perf profiles. glibc's
allocator keeps them: detection end to end from Redis went from 216–279 k to 316–358 k events/s
in runs alternated on the same machine (docs/benchmarks.md, "Detection").
"""

from __future__ import annotations

from fleetlens.logsetup import get_logger

log = get_logger(__name__)

POOLS = ("system", "mimalloc", "jemalloc")


def use_arrow_memory_pool(name: str) -> None:
    """Make ``name`` (one of ``POOLS``) pyarrow's default pool; a pool this build lacks is logged and skipped."""
    import pyarrow as pa  # here, not at import: the CLI imports this module for every command

    if name not in POOLS:
        raise ValueError(f"arrow memory pool must be one of {', '.join(POOLS)}, not {name!r}")
    if pa.default_memory_pool().backend_name == name:
        return
    try:
        pool = getattr(pa, f"{name}_memory_pool")()
    except NotImplementedError:  # pyarrow built without it
        log.warning("arrow memory pool not available in this pyarrow build; keeping the default",
                    wanted=name, default=pa.default_memory_pool().backend_name)
        return
    pa.set_memory_pool(pool)
