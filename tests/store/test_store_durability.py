"""Rows are durable once insert_arrow returns: they survive a SIGKILL of the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fleetlens.store.client import EmbeddedStore

CHILD = textwrap.dedent(
    """
    import sys, time
    from fleetlens.store.client import EmbeddedStore
    from fleetlens.store.migrations import ensure_schema
    from tests.store.tables_data import events_table
    store = EmbeddedStore(sys.argv[1], "fleetlens")
    ensure_schema(store)
    for i in range(5):
        store.insert_arrow("events", events_table(1000, prefix=f"b{i}"))
    print("inserted", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.slow
def test_inserted_rows_survive_sigkill(tmp_path: Path):
    path = tmp_path / "chdb"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env, cwd=repo)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "inserted"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with EmbeddedStore(path, "fleetlens") as store:
        assert store.query_scalar("SELECT count() FROM events") == 5000
        assert store.query_scalar("SELECT uniqExact(event_id) FROM events") == 5000
