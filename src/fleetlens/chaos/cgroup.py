"""A CPU limit for one role process (a cgroup CPU quota, as a container's CPU limit would be).

The overload run needs producers at twice what ingest sustains; on a 2-core machine that the
producer shares, an unlimited worker sustains more than the producer can offer. Limiting the
worker's CPU (cgroup v1 ``cpu`` controller, or v2 ``cpu.max``) brings its sustainable rate down
to something the producer can double, exactly as a container CPU limit does in a deployment.
"""

from __future__ import annotations

import os
from pathlib import Path

from fleetlens.logsetup import get_logger

log = get_logger(__name__)

_PERIOD_US = 100_000


class CpuLimit:
    """A cgroup holding processes to ``cpus`` CPUs; ``close`` removes it. ``active`` is False where cgroups are not writable."""

    def __init__(self, cpus: float, name: str | None = None):
        self.cpus = cpus
        self.path: Path | None = None
        self.v2 = False
        name = name or f"fleetlens-chaos-{os.getpid()}"
        quota = max(1000, int(cpus * _PERIOD_US))
        for root, v2 in ((Path("/sys/fs/cgroup/cpu"), False), (Path("/sys/fs/cgroup"), True)):
            try:
                if v2 and not (root / "cgroup.controllers").exists():
                    continue
                path = root / name
                path.mkdir(exist_ok=True)
                if v2:
                    (path / "cpu.max").write_text(f"{quota} {_PERIOD_US}")
                else:
                    (path / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
                    (path / "cpu.cfs_quota_us").write_text(str(quota))
                self.path, self.v2 = path, v2
                return
            except OSError as exc:
                log.debug("cgroup not usable", root=str(root), error=str(exc))
        log.warning("no writable cgroup: running without a CPU limit", cpus=cpus)

    @property
    def active(self) -> bool:
        """True when processes can be limited."""
        return self.path is not None

    def add(self, pid: int) -> bool:
        """Put process ``pid`` under the limit; False when it could not be."""
        if self.path is None:
            return False
        try:
            (self.path / "cgroup.procs").write_text(str(pid))
            return True
        except OSError as exc:
            log.warning("could not limit the process's CPU", pid=pid, error=str(exc))
            return False

    def close(self) -> None:
        """Remove the cgroup (its processes must have exited)."""
        if self.path is not None:
            try:
                self.path.rmdir()
            except OSError:
                pass
            self.path = None
