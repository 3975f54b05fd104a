#!/usr/bin/env python3
"""Smoke test of the compose cluster; run after `docker compose up -d --wait` in this directory.

Checks, each printed PASS/FAIL (exit status 1 on any failure):
1. simulated events sent to Kafka reach the store, exactly once (counted with FINAL);
2. rows reached every shard, and both replicas of a shard hold the same rows;
3. a ClickHouse replica killed: reads through the Distributed table still return every row;
4. a Kafka broker killed: a second batch of events is still stored completely.
Only the standard library and the docker CLI are needed. Usage: python3 smoke.py [--events N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = dict(line.split("=", 1) for line in (HERE / ".env").read_text().splitlines() if "=" in line and not line.startswith("#"))
failures: list[str] = []


def compose(*args: str, check: bool = True, capture: bool = True) -> str:
    out = subprocess.run(["docker", "compose", *args], cwd=HERE, capture_output=capture, text=True, timeout=900)
    if check and out.returncode != 0:
        raise SystemExit(f"docker compose {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout if capture else ""


def sql(query: str, node: str = "clickhouse-s1r1") -> str:
    return compose("exec", "-T", node, "clickhouse-client", "--user", "fleetlens", "--password", ENV["CLICKHOUSE_PASSWORD"],
                   "--query", query).strip()


def stored(node: str = "clickhouse-s1r1") -> int:
    return int(sql("SELECT (SELECT count() FROM fleetlens.events FINAL) + (SELECT count() FROM fleetlens.metrics FINAL)", node))


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail}")
    if not ok:
        failures.append(name)


def simulate_and_wait(events: int, seed: int, before: int, timeout_s: float = 300) -> int:
    compose("--profile", "tools", "run", "--rm", "simulate", "simulate", "--output", "mq", "--count", str(events),
            "--seed", str(seed), "--fast", "--json")
    deadline = time.monotonic() + timeout_s
    now = before
    while time.monotonic() < deadline:
        now = stored()
        if now - before >= events:
            break
        time.sleep(3)
    return now - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per simulated batch")
    args = parser.parse_args()

    before = stored()
    added = simulate_and_wait(args.events, seed=1001, before=before)
    check("events stored exactly once", added == args.events, f"{added:,} of {args.events:,}")

    sql("SYSTEM SYNC REPLICA ON CLUSTER 'fleetlens' fleetlens.events_local")
    per_replica = sql("SELECT getMacro('shard'), getMacro('replica'), count() FROM clusterAllReplicas('fleetlens', fleetlens.events_local) "
                      "GROUP BY 1, 2 ORDER BY 1, 2").splitlines()
    counts: dict[str, set[str]] = {}
    for line in per_replica:
        shard, _replica, n = line.split("\t")
        counts.setdefault(shard, set()).add(n)
    check("rows on every shard", len(counts) == 3 and all(int(next(iter(v))) > 0 for v in counts.values()), str(per_replica))
    check("replicas of a shard agree", len(per_replica) == 6 and all(len(v) == 1 for v in counts.values()), str(per_replica))

    total = stored()
    compose("kill", "clickhouse-s2r1")
    try:
        check("reads with a replica down", stored("clickhouse-s1r1") == total, "clickhouse-s2r1 killed")
    finally:
        compose("start", "clickhouse-s2r1")

    compose("kill", "kafka-2")
    try:
        added = simulate_and_wait(args.events, seed=1002, before=stored())
        check("events stored with a broker down", added == args.events, f"{added:,} of {args.events:,}, kafka-2 killed")
    finally:
        compose("start", "kafka-2")

    print(compose("exec", "-T", "api", "fleetlens", "status"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
