"""The fleetlens roles a chaos run can break, as a registry: how to start one, how to count its output.

A role runs as its own process (``python -m fleetlens <args>``) so it can be SIGKILLed like a
crash would. Adding a role (detector, archiver) is one ``Role`` entry: its command, the consumer
group whose acknowledgements show progress, and a ``count`` that reads what it produced from the
data directory after it stopped. ``count`` runs in a fresh process (``python -m
fleetlens.chaos.roles count <role> <data_dir>``): the embedded store belongs to one process at a
time, and the harness itself never opens it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fleetlens.simulate.runner import SimulationSummary


@dataclass(frozen=True)
class Counts:
    """What a role produced: rows written and distinct keys among them (rows − distinct = duplicates)."""

    rows: int
    distinct: int


def count_ingest(data_dir: Path) -> Counts:
    """Events and metric samples in the embedded store, and distinct event ids among them."""
    from fleetlens.store.client import EmbeddedStore

    store = EmbeddedStore(data_dir / "chdb", "fleetlens")
    try:
        rows = distinct = 0
        for table in ("events", "metrics"):
            rows += int(store.query_scalar(f"SELECT count() FROM {table}"))
            distinct += int(store.query_scalar(f"SELECT uniqExact(event_id) FROM {table}"))
        return Counts(rows, distinct)
    finally:
        store.close()


@dataclass(frozen=True)
class Role:
    """One role as a chaos run sees it."""

    name: str
    args: tuple[str, ...]  # ``fleetlens`` arguments that run it until SIGTERM
    drain_args: tuple[str, ...]  # ... that run it until it has nothing left to do, then exit 0
    group: str  # consumer group whose acknowledgements show its progress
    count: Callable[[Path], Counts]  # what it produced, read from the data directory
    expected: Callable[[SimulationSummary], int]  # what it should have produced from that traffic
    env: dict[str, str] = field(default_factory=dict)  # role-specific FLEETLENS_* settings


ROLES: dict[str, Role] = {
    "ingest": Role(
        name="ingest",
        args=("ingest",),
        drain_args=("ingest", "--until-idle", "3"),
        group="ingest",
        count=count_ingest,
        expected=lambda summary: summary.events,
        env={"FLEETLENS_INGEST__CONSUMER": "chaos", "FLEETLENS_INGEST__BATCH_ROWS": "3000",
             "FLEETLENS_INGEST__BATCH_SECONDS": "0.2"},
    ),
}


def role(name: str) -> Role:
    """The registered role ``name``."""
    try:
        return ROLES[name]
    except KeyError:
        raise ValueError(f"unknown role {name!r}; known: {', '.join(ROLES)}") from None


class RoleProcess:
    """One running role process: SIGKILL it, stop it, and know its peak resident memory."""

    def __init__(self, spec: Role, env: dict[str, str], drain: bool = False, log_path: Path | None = None):
        self.spec = spec
        argv = [sys.executable, "-m", "fleetlens", "--log-level", "warning", *(spec.drain_args if drain else spec.args)]
        self.log_path = log_path
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(argv, env={**os.environ, **env, **spec.env}, stdout=out, stderr=subprocess.STDOUT)
        if log_path:
            out.close()  # type: ignore[union-attr]
        self.peak_rss_mb = 0.0
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        """Process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Still running (reaps it, with its peak RSS, once it exited)."""
        return self.returncode is None and not self._reap(block=False)

    def rss_mb(self) -> float:
        """Resident memory now (MB), 0 once gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def sigkill(self) -> None:
        """Kill at once, as a crash would."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def stop(self, timeout_s: float = 120.0) -> int:
        """SIGTERM (the role finishes what it holds), SIGKILL after ``timeout_s``; returns the exit code."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float) -> int:  # type: ignore[return]
        """Wait for the exit (SIGKILL after ``timeout_s``); returns the exit code."""
        deadline = time.monotonic() + timeout_s
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        return self._reap()

    def _reap(self, block: bool = True) -> int | None:
        if self.returncode is None:
            # wait4, not Popen.poll/waitpid: the kernel's peak RSS of this very child comes with it.
            pid, status, usage = os.wait4(self.pid, 0 if block else os.WNOHANG)
            if pid == 0:
                return None
            self.returncode = os.waitstatus_to_exitcode(status)
            self.process.returncode = self.returncode
            self.peak_rss_mb = usage.ru_maxrss / 1024
        return self.returncode

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the process's output."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path and self.log_path.exists() else ""


def count_in_subprocess(spec: Role, data_dir: Path, timeout_s: float = 300.0) -> Counts:
    """``spec.count(data_dir)`` in a fresh process (the store is opened there, not here)."""
    out = subprocess.run(
        [sys.executable, "-m", "fleetlens.chaos.roles", "count", spec.name, str(data_dir)],
        capture_output=True, text=True, timeout=timeout_s,
    )
    if out.returncode != 0:
        raise RuntimeError(f"counting {spec.name} output failed: {out.stderr[-2000:]}")
    return Counts(**json.loads(out.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "count":
        sys.exit("usage: python -m fleetlens.chaos.roles count <role> <data_dir>")
    counts = role(sys.argv[2]).count(Path(sys.argv[3]))
    print(json.dumps({"rows": counts.rows, "distinct": counts.distinct}))
