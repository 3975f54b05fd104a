"""Where and when a benchmark ran: the line each ``fleetlens bench`` command prints with its figures.

docs/benchmarks.md records every figure with its machine, date, load and code; this VM's timings move
±20–30 % with what else runs, so a figure without the load it was taken under cannot be compared.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def code_version() -> str:
    """The git commit of the running code (``+dirty`` with uncommitted changes), or "unknown" outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        # the whole checkout, not only this folder: a change in native/ changes the figures too
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head or "unknown"


@dataclass
class RunContext:
    """Taken when a benchmark starts; ``line()`` at the end adds the load average reached meanwhile."""

    started: float = field(default_factory=time.time)
    load_before: float = field(default_factory=lambda: os.getloadavg()[0])
    code: str = field(default_factory=code_version)

    def line(self) -> str:
        """``2 cores, x86_64, 2026-12-07 09:43 UTC, load 0.5 → 2.9, code dfb7969``."""
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.started))
        return (f"{os.cpu_count()} cores, {platform.machine()}, {when}, "
                f"load {self.load_before:.1f} → {os.getloadavg()[0]:.1f}, code {self.code}")
