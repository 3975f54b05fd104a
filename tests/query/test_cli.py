"""End to end: `fleetlens up` serves the API while ingesting; `fleetlens query` reads the same store afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from fleetlens.sources.redis_server import free_port


def fleetlens(tmp_path, *args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleetlens", "--data-dir", str(tmp_path / "data"), *args],
                          capture_output=True, text=True, timeout=120, env=env or os.environ.copy(), **kw)


@pytest.mark.slow
def test_up_serves_the_api_while_ingesting_and_the_cli_reads_the_store(tmp_path):
    api_port, redis_port = free_port(), free_port()
    env = {**os.environ, "FLEETLENS_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0", "FLEETLENS_QUERY__PORT": str(api_port)}
    token = fleetlens(tmp_path, "token", "create", "--role", "read", "--name", "test").stdout.strip()  # up then makes none
    proc = subprocess.Popen([sys.executable, "-m", "fleetlens", "--data-dir", str(tmp_path / "data"), "up", "--rate", "3000",
                             "--duration", "8"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:  # refused before the API listens and once `up` stops it to drain ingest
                    body = client.get("/events", params={"limit": 5, "kind": "log"}).json()
                    business = client.get("/business", params={"interval": "15m"})
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                assert business.status_code == 200, business.text
                seen.append(sum(c["events"] for c in body["counts"]))
                time.sleep(0.5)
    finally:
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert f"query API: http://127.0.0.1:{api_port}" in out
    assert seen == sorted(seen) and len(set(seen) - {0}) >= 2, f"counts while ingesting: {seen}"

    events = fleetlens(tmp_path, "query", "events", "--kind", "log", "--limit", "3", "--json")
    assert events.returncode == 0, events.stderr
    page = json.loads(events.stdout)
    assert len(page["events"]) == 3 and sum(c["events"] for c in page["counts"]) >= seen[-1]
    action_id = next(e["action_id"] for e in page["events"] if e["action_id"])
    trace = fleetlens(tmp_path, "query", "trace", action_id)
    assert trace.returncode == 0 and "spans" in trace.stdout and action_id in trace.stdout
    bad = fleetlens(tmp_path, "query", "business", "--interval", "7m")
    assert bad.returncode == 2 and "--interval" in bad.stderr
    for command in (["users", "--step", "5m"], ["perf"], ["perf", "--resources"], ["anomalies"], ["rejections"]):
        result = fleetlens(tmp_path, "query", *command, "--json")
        assert result.returncode == 0, (command, result.stderr)
        assert "elapsed_ms" in json.loads(result.stdout)
