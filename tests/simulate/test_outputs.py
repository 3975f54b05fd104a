"""Redis stream output against a real server, and the command-line function."""

from __future__ import annotations

import orjson
import pytest
import redis
import typer
from typer.testing import CliRunner

from fleetlens.simulate import run_simulation
from fleetlens.sources.redis import RedisStreamSink, connect
from fleetlens.simulate.cli import simulate
from tests.simulate.helpers import START, config


@pytest.mark.parametrize("per_message", [1, 10])
def test_redis_stream_gets_exact_counts(redis_server, per_message):
    sink = RedisStreamSink(connect(redis_server.url), pipeline_size=300)
    summary = run_simulation(config(seed=41, count=4321, events_per_message=per_message), sink, stream="fleet.events")
    sink.close()
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        assert client.xlen("fleet.events") == summary.messages == -(-4321 // per_message)
        entries = client.xrange("fleet.events")
        lines = [line for _, fields in entries for line in fields[b"data"].split(b"\n")]
        assert list(entries[0][1]) == [b"data"]
        assert len(lines) == summary.events == 4321
        events = [orjson.loads(line) for line in lines]
        assert len({e["event_id"] for e in events}) == 4321
        assert sum(summary.by_kind.values()) == 4321
        assert sum(e["kind"] == "business" for e in events) == summary.by_kind["business"]
    finally:
        client.close()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(simulate)
    return app


def test_cli_to_file_with_labels(tmp_path):
    out, labels = tmp_path / "events.ndjson", tmp_path / "labels.jsonl"
    result = CliRunner().invoke(_app(), [
        "--output", str(out), "--duration", "40", "--rate", "500", "--seed", "3", "--start", START,
        "--events-per-message", "1", "--inject", "identical_burst@10+5", "--inject", "cpu_saturation:ip-10-0-0-12@5+30",
        "--labels", str(labels), "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    lines = out.read_bytes().splitlines()
    assert summary["events"] == len(lines) == summary["messages"]
    assert [orjson.loads(x)["scenario"] for x in labels.read_bytes().splitlines()] == ["identical_burst", "cpu_saturation"]
    again = tmp_path / "again.ndjson"
    CliRunner().invoke(_app(), ["--output", str(again), "--duration", "40", "--rate", "500", "--seed", "3", "--start", START,
                                "--events-per-message", "1"])
    assert again.read_bytes() != out.read_bytes()  # the anomalies changed the traffic


def test_cli_to_redis(redis_server):
    result = CliRunner().invoke(_app(), ["--redis-url", redis_server.url, "--count", "1000", "--stream", "s1",
                                         "--events-per-message", "100", "--start", START])
    assert result.exit_code == 0, result.output
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    assert client.xlen("s1") == 10
    client.close()


@pytest.mark.parametrize("args", [["--output", "-"], ["--count", "10", "--inject", "nope"], ["--count", "10", "--providers", "9"]])
def test_cli_refuses_bad_options(args):
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code != 0
