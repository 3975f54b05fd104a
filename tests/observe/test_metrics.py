"""/metrics, /healthz and /readyz during a real ingest run: Redis-protocol server, simulator, worker, chDB."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetlens.api.app import create_app
from fleetlens.api.auth import TokenStore
from fleetlens.api.server import serve_in_thread
from fleetlens.ingest.run import build_worker
from fleetlens.observe.role import RoleObserver
from fleetlens.settings import Settings
from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.runner import run_simulation
from fleetlens.sources.redis import RedisStreamSink
from fleetlens.sources.redis_server import free_port

START_MS = 1_795_000_000_000


def scrape(client: httpx.Client) -> dict[tuple[str, tuple], float]:
    """Every sample of a /metrics answer, parsed by prometheus_client's own text parser."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


@pytest.fixture
def stack(redis_server, redis_client, store, tmp_path):
    """Settings on the test Redis, a token, and a sink; the worker is started by the test."""
    settings = Settings(data_dir=tmp_path, redis={"url": redis_server.url, "block_ms": 50},
                        ingest={"batch_rows": 2000, "batch_seconds": 0.2, "consumer": "obs-test"},
                        observe={"port": free_port(), "lag_every_s": 0.2, "ready_max_lag": 0})
    token = TokenStore(settings.tokens_path).create("read", "prometheus")
    return settings, token, RedisStreamSink(redis_client)


def test_metrics_move_during_a_real_ingest_run(stack, store):
    settings, token, sink = stack
    before = {}
    worker = build_worker(settings, store)
    observer = RoleObserver(settings, store, worker.source, settings.ingest.group,
                            alive=lambda: worker.error is None).start(serve=True)
    api = serve_in_thread(create_app(store, settings), "127.0.0.1", 0)
    stop = threading.Event()
    ingest = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    try:
        assert observer.server is not None
        metrics_url = observer.server.url
        with httpx.Client(base_url=metrics_url, timeout=10) as anonymous:
            assert anonymous.get("/metrics").status_code == 401  # a token is needed unless auth.metrics_public
            assert anonymous.get("/healthz").json() == {"status": "ok"}
        with httpx.Client(base_url=metrics_url, timeout=10, headers={"Authorization": f"Bearer {token}"}) as prom:
            before = scrape(prom)
            # a backlog before the worker runs: the lag shows it and /readyz (bound 0) says not ready
            summary = run_simulation(SimulationConfig(seed=3, start_ms=START_MS, count=20_000, events_per_message=50,
                                                      users=100), sink, stream=settings.streams[0])
            sink.send(settings.streams[0], [b'{"event_id":"bad-1","ts":1795000000000,"kind":"log"}\n{nope'])
            deadline = time.monotonic() + 10
            while (backlog := total(scrape(prom), "fleetlens_consumer_lag_messages", group="ingest",
                                    state="undelivered")) != summary.messages + 1:
                assert time.monotonic() < deadline, f"the lag never showed the backlog: {backlog}"
                time.sleep(0.1)
            not_ready = prom.get("/readyz")
            assert not_ready.status_code == 503 and not not_ready.json()["checks"]["lag"]["ok"]
            assert not_ready.json()["checks"]["store"]["ok"] and not_ready.json()["checks"]["mq"]["ok"]

            ingest.start()
            seen = []
            deadline = time.monotonic() + 60
            while True:
                now = scrape(prom)
                seen.append(total(now, "fleetlens_events_stored_total"))
                lag = total(now, "fleetlens_consumer_lag_messages", group="ingest")
                if lag == 0 and seen[-1] - total(before, "fleetlens_events_stored_total") >= summary.events:
                    break
                assert time.monotonic() < deadline, f"ingest did not drain: lag {lag}, stored {seen[-1]}"
                time.sleep(0.2)
            after = now
            while prom.get("/readyz").status_code != 200:  # answers are cached for a second
                assert time.monotonic() < deadline, prom.get("/readyz").text
                time.sleep(0.2)

        def grew(name: str, **labels) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        assert grew("fleetlens_events_stored_total") == summary.events  # events + metric samples
        assert grew("fleetlens_events_stored_total", table="events") > 0
        assert grew("fleetlens_events_stored_total", table="metrics") > 0
        assert grew("fleetlens_events_rejected_total") == 2
        assert grew("fleetlens_messages_consumed_total") == summary.messages + 1
        assert grew("fleetlens_events_consumed_total") == summary.events + 2
        assert grew("fleetlens_ingest_batches_total") >= 1
        assert grew("fleetlens_ingest_batch_events_count") == grew("fleetlens_ingest_batches_total")
        assert grew("fleetlens_store_insert_seconds_count", table="events") >= 1
        assert grew("fleetlens_ingest_batch_seconds_sum") > 0
        assert len(seen) >= 2 and seen == sorted(seen)

        # the API serves the same registry, and query latency by family
        with httpx.Client(base_url=api.url, timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.get("/events", params={"start": START_MS, "end": START_MS + 3600_000}).status_code == 200
            from_api = scrape(client)
            assert total(from_api, "fleetlens_events_stored_total") == total(after, "fleetlens_events_stored_total")
            assert total(from_api, "fleetlens_api_request_seconds_count", family="/events", status="2xx") >= 1
            assert client.get("/readyz").json()["checks"]["store"]["ok"]
    finally:
        stop.set()
        if ingest.is_alive():
            ingest.join(30)
        api.stop()
        observer.stop()
        worker.source.close()


def test_readyz_fails_when_the_mq_is_gone(stack, store, redis_server):
    settings, token, _ = stack
    settings = settings.model_copy(update={"observe": settings.observe.model_copy(update={"ready_max_lag": 1000})})
    worker = build_worker(settings, store)
    observer = RoleObserver(settings, store, worker.source, settings.ingest.group).start(serve=True)
    try:
        with httpx.Client(base_url=observer.server.url, timeout=10) as client:
            deadline = time.monotonic() + 10
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.3)
            redis_server.stop()
            time.sleep(1.1)  # past the readiness cache
            gone = client.get("/readyz")
            assert gone.status_code == 503 and not gone.json()["checks"]["mq"]["ok"], gone.text
            assert client.get("/healthz").status_code == 200  # alive, only not ready
    finally:
        observer.stop()
        worker.source.close()
