"""The fleetlens roles a chaos run can break, as a registry: how to start one, how to count its output.

A role runs as its own process (``python -m fleetlens <args>``) so it can be SIGKILLed like a
crash would. Adding a consumer role is one ``Role`` entry: its command, the consumer group whose
acknowledgements show progress, and a ``count`` that reads what it produced from the data
directory after it stopped. What a role must produce is either derived from the traffic
(``expected``: ingest stores every event) or, where it is not a count of the input (the detector's
alerts), what the same role produced from the same stream in a clean run without kills
(``reference_env``): then ``count`` also returns the keys, and lost/duplicated compare key sets.
A batch role (the archiver, ``history_days``) works on stored history instead of a stream.
``count`` runs in a fresh process (``python -m fleetlens.chaos.roles count <role> <data_dir>``):
the embedded store belongs to one process at a time, and the harness itself never opens it.
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
    keys: tuple[str, ...] = ()  # for roles compared with a clean run: what identifies each output row


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


def count_detector(data_dir: Path) -> Counts:
    """Alerts in the store (one row per alert id after FINAL), keyed ``rule|key|id``."""
    from fleetlens.store.client import EmbeddedStore

    store = EmbeddedStore(data_dir / "chdb", "fleetlens")
    try:
        rows = store.query_arrow("SELECT id, rule, key FROM alerts FINAL ORDER BY rule, key, id").to_pylist()
        keys = tuple(f"{r['rule']}|{r['key']}|{r['id']}" for r in rows)
        return Counts(len(rows), len({r["id"] for r in rows}), keys)
    finally:
        store.close()


def count_archive(data_dir: Path) -> Counts:
    """Event and metric rows over the hot tables, their staging twins and the archive files the manifests list."""
    import pyarrow.parquet as pq

    from fleetlens.archive.families import FAMILIES
    from fleetlens.archive.layout import day_dir, target_from_settings
    from fleetlens.archive.manifest import ARCHIVED, scan_manifests
    from fleetlens.settings import Settings
    from fleetlens.store.client import EmbeddedStore

    target = target_from_settings(Settings(data_dir=data_dir))
    store = EmbeddedStore(data_dir / "chdb", "fleetlens")
    rows = distinct = 0
    try:
        for family in (f for f in FAMILIES if f.name in ("events", "metrics")):
            ids: list[str] = []
            for table in (family.name, family.staging.name):
                ids += store.query_arrow(f"SELECT event_id FROM {table}").column(0).to_pylist()
            for day, manifest in scan_manifests(target, family.name).items():
                if manifest.state != ARCHIVED:  # restored: the rows are hot again
                    continue
                for name in manifest.files:
                    with target.fs.open_input_file(target.path(f"{day_dir(family.name, day)}/{name}")) as fh:
                        ids += pq.read_table(fh, columns=["event_id"]).column(0).to_pylist()
            rows += len(ids)
            distinct += len(set(ids))
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
    traffic: tuple[str, ...] = ()  # simulator scenarios injected into the traffic it consumes
    # Set: judge the output against a clean run (these env overrides, a data dir of its own) on the same stream.
    reference_env: dict[str, str] | None = None
    # > 0: a batch job over the store, not a consumer (group unused): traffic spread over this many
    # past days is stored through ingest first, and a kill counts when the run had not finished.
    history_days: int = 0


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
    # Small micro-batches: more acknowledgements to be killed between (a default batch holds 50k events).
    "detect": Role(
        name="detect",
        args=("detect",),
        drain_args=("detect", "--until-idle", "3"),
        group="detect",
        count=count_detector,
        expected=lambda summary: 0,  # judged against the clean run (reference_env)
        env={"FLEETLENS_DETECT__CONSUMER": "chaos", "FLEETLENS_DETECT__BATCH_EVENTS": "4000",
             "FLEETLENS_DETECT__BATCH_MS": "50"},
        # At 2,000 events per second of event time: the first three end within 360k events (alerted once the
        # watermark passes them: ~400k), all five within 1.2M.
        traffic=("provider_outage@30+90", "service_crash@130+5", "identical_burst@150+30", "error_spike@240+120",
                 "cpu_saturation@420+180"),
        reference_env={"FLEETLENS_DETECT__GROUP": "detect-reference", "FLEETLENS_DETECT__ALERTS_STREAM": ""},
    ),
    # Archives every day but yesterday and today; rows must end up hot or archived, once.
    "archive": Role(
        name="archive",
        args=("archive", "run", "--retention-days", "1"),
        drain_args=("archive", "run", "--retention-days", "1"),
        group="",
        count=count_archive,
        expected=lambda summary: summary.events,
        history_days=60,  # 59 days × 2 tables to archive: a run lasts long enough for 20 kills mid-run
    ),
}


def role(name: str) -> Role:
    """The registered role ``name``."""
    try:
        return ROLES[name]
    except KeyError:
        raise ValueError(f"unknown role {name!r}; known: {', '.join(ROLES)}") from None


class RoleProcess:
    """One running role process: SIGKILL it, stop it, and know its peak resident memory (``peak_rss_mb``: the
    kernel's high-water mark as last read, every ``alive`` call, down to its last 50 ms when stopped)."""

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
        """Still running (reaps it once it exited). Each call also updates ``peak_rss_mb``."""
        if self.returncode is None:
            self.peak_rss_mb = max(self.peak_rss_mb, self._status_mb("VmHWM:"))
        return self.returncode is None and not self._reap(block=False)

    def rss_mb(self) -> float:
        """Resident memory now (MB), 0 once gone."""
        return self._status_mb("VmRSS:")

    def _status_mb(self, field: str) -> float:
        """A memory field of /proc/PID/status in MB (0 once gone).

        The peak is the kernel's high-water mark of the process's own memory (VmHWM), read while it
        runs; ``wait4``'s ru_maxrss would not do: it also counts the parent's resident pages the child
        held between fork and exec (a 1.5 GB test process made a ~780 MB worker report 1.5 GB)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(field):
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
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if pid == 0:
                return None
            self.returncode = os.waitstatus_to_exitcode(status)
            self.process.returncode = self.returncode
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
    counted = json.loads(out.stdout.strip().splitlines()[-1])
    return Counts(counted["rows"], counted["distinct"], tuple(counted.get("keys", ())))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "count":
        sys.exit("usage: python -m fleetlens.chaos.roles count <role> <data_dir>")
    counts = role(sys.argv[2]).count(Path(sys.argv[3]))
    print(json.dumps({"rows": counts.rows, "distinct": counts.distinct, "keys": list(counts.keys)}))
