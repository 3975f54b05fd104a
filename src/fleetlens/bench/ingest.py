"""``fleetlens bench ingest``: end-to-end events/s from the MQ (Redis Streams or Kafka) into the store.

For each case (NDJSON messages of ``batch`` events; 1 event per message) the same stream/topic is
drained, in each of several rounds, by two fresh consumer groups: a raw consume + acknowledge loop
doing no processing at all (``XREADGROUP`` + ``XACK``, or confluent-kafka ``consume`` + ``commit``:
the ceiling any consumer can reach), then the real ingest worker (decode, dedup, Arrow insert into
chDB, acknowledge). Medians are reported: this machine's timings move ±20–30 % between runs. A
third figure is the store's insert rate alone on the already decoded tables. Everything runs on a
fresh server (a Redis-protocol server, or a single-node Kafka broker) and a fresh chDB directory
in a temporary folder.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from fleetlens.contract.decode import ARROW, FAST_PATH, NATIVE, decode_payloads, fast_path
from fleetlens.ingest.stats import IngestStats
from fleetlens.ingest.worker import IngestWorker
from fleetlens.settings import Settings
from fleetlens.simulate.runner import generate_payloads
from fleetlens.sources.base import Source
from fleetlens.sources.redis import RedisStreamSink, RedisStreamSource, connect, xreadgroup_raw
from fleetlens.sources.redis_server import RedisServer, free_port
from fleetlens.store import tables
from fleetlens.store.client import Store, open_store


def _raw_consume(client, stream: str, group: str, expected: int, count: int) -> float:
    """Seconds a bare XREADGROUP + XACK loop takes to drain ``expected`` entries.

    It reads the way the ingest source does (``xreadgroup_raw``, no per-entry objects), so the
    comparison is with the fastest consumer this client allows, not with a slower baseline.
    """
    client.xgroup_create(stream, group, id="0")
    seen = 0
    started = time.perf_counter()
    while seen < expected:
        for _stream, entries in xreadgroup_raw(client, group, "raw-1", {stream: ">"}, count, 100):
            if entries:
                client.xack(stream, group, *[entry[0] for entry in entries])
                seen += len(entries)
    return time.perf_counter() - started


class _RedisBench:
    """A fresh Redis-protocol server: producing, the raw XREADGROUP + XACK loop, the ingest source."""

    raw_label = "raw XREADGROUP+XACK"

    def __init__(self, settings: Settings, workdir: Path):
        self.settings = settings
        self.server = RedisServer(free_port(), workdir / "redis").start()
        self.client = connect(self.server.url)

    def send(self, stream: str, payloads: list[bytes]) -> None:
        RedisStreamSink(self.client, pipeline_size=2000).send(stream, payloads)

    def raw_consume(self, stream: str, group: str, expected: int) -> float:
        return _raw_consume(self.client, stream, group, expected, self.settings.redis.read_count)

    def source(self, stream: str, group: str) -> Source:
        return RedisStreamSource(self.client, [stream], group, "bench-1", self.settings.dlq_stream, self.settings.redis)

    def close(self) -> None:
        self.client.close()
        self.server.stop()


class _KafkaBench:
    """A fresh single-node Kafka broker: producing, the raw consume + commit loop, the ingest source."""

    raw_label = "raw consume+commit"

    def __init__(self, settings: Settings, workdir: Path):
        from fleetlens.sources.kafka_broker import KafkaBroker

        self.broker = KafkaBroker(workdir / "kafka", heap="1g").start()
        self.kafka = settings.kafka.model_copy(update={"bootstrap": self.broker.bootstrap})
        self.settings = settings

    def send(self, stream: str, payloads: list[bytes]) -> None:
        from fleetlens.sources.kafka import KafkaSink, ensure_topics

        ensure_topics(self.kafka, [stream, self.settings.dlq_stream])
        sink = KafkaSink(self.kafka)
        sink.send(stream, payloads)
        sink.close()

    def raw_consume(self, stream: str, group: str, expected: int) -> float:
        """Seconds a bare confluent-kafka consume + synchronous commit loop takes to drain ``expected`` messages."""
        from confluent_kafka import Consumer

        from fleetlens.sources.kafka import consumer_config

        # The ingest source's consumer options (prefetch bound and backoff), so both fetch alike.
        consumer = Consumer({**consumer_config(self.kafka, group), "auto.offset.reset": "earliest",
                             "enable.auto.offset.store": True})  # commit() then commits what consume returned
        consumer.subscribe([stream])
        seen = 0
        started = time.perf_counter()
        while seen < expected:
            messages = consumer.consume(self.kafka.read_count, 0.1)
            if messages:
                seen += sum(1 for m in messages if m.error() is None)
                consumer.commit(asynchronous=False)
        elapsed = time.perf_counter() - started
        consumer.close()
        return elapsed

    def source(self, stream: str, group: str) -> Source:
        from fleetlens.sources.kafka import KafkaSource

        return KafkaSource([stream], group, "bench-1", self.settings.dlq_stream, self.kafka)

    def close(self) -> None:
        self.broker.kill()


def _ingest(settings: Settings, source: Source, store: Store, expected_events: int) -> tuple[float, IngestStats]:
    """Seconds the ingest worker takes until every event of the source is stored and acknowledged."""
    stats = IngestStats()
    worker = IngestWorker(source, store, settings.ingest, stats)
    started = time.perf_counter()
    import threading

    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,), name="bench-ingest")
    runner.start()
    while stats.stored < expected_events and runner.is_alive():
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    runner.join()
    source.close()
    if worker.error:
        raise worker.error
    return elapsed, stats


def _insert_only(store: Store, payloads: list[bytes], batch_rows: int) -> tuple[float, int]:
    """Seconds to insert the decoded tables of ``payloads`` in ``batch_rows`` chunks, and the row count."""
    decoded = decode_payloads(payloads)
    chunks: list[tuple[str, pa.Table]] = []
    for name, table in ((tables.EVENTS, decoded.events), (tables.METRICS, decoded.metrics)):
        chunks.extend((name, table.slice(i, batch_rows)) for i in range(0, table.num_rows, batch_rows))
    started = time.perf_counter()
    for name, chunk in chunks:
        store.insert_arrow(name, chunk)
    return time.perf_counter() - started, decoded.events.num_rows + decoded.metrics.num_rows


def run_ingest_bench(
    settings: Settings, events: int, single_messages: int, batch: int, rounds: int = 3, mq: str = "redis",
    compare_arrow: bool = False,
) -> dict[str, dict[str, float]]:
    """Measure every case ``rounds`` times (alternating raw and ingest) on ``mq``; returns medians per case.

    Rates are events (or messages) per second. Each round drains the same stream with fresh
    consumer groups and a truncated store, so rounds see identical work. ``compare_arrow`` adds,
    in every round, an ingest with the Arrow fast path of the decoder instead of the native one.
    """
    workdir = Path(tempfile.mkdtemp(prefix="fleetlens-bench-"))
    bench_settings = settings.model_copy(update={"data_dir": workdir, "clickhouse_url": None})
    harness = (_KafkaBench if mq == "kafka" else _RedisBench)(bench_settings, workdir)
    store = open_store(bench_settings)
    results: dict[str, dict[str, float]] = {}
    try:
        cases = [
            (f"ndjson{batch}", generate_payloads(events, events_per_message=batch, seed=1)),
            ("single", generate_payloads(single_messages, events_per_message=1, seed=2)),
        ]
        for name, payloads in cases:
            n_events = sum(p.count(b"\n") + 1 for p in payloads)
            stream = f"bench.{name}"
            started = time.perf_counter()
            harness.send(stream, payloads)
            produce_s = time.perf_counter() - started
            raw, ingest, insert, arrow = [], [], [], []

            def ingest_once(group: str) -> float:
                for table in (tables.EVENTS, tables.METRICS):
                    store.command(f"TRUNCATE TABLE {table}")
                took, stats = _ingest(bench_settings, harness.source(stream, group), store, n_events)
                if stats.stored != n_events:
                    raise RuntimeError(f"{name}: stored {stats.stored} of {n_events} events")
                return took

            for round_ in range(rounds):
                raw.append(harness.raw_consume(stream, f"raw{round_}", len(payloads)))
                ingest.append(ingest_once(f"ingest{round_}"))
                if compare_arrow:
                    with fast_path(ARROW):
                        arrow.append(ingest_once(f"arrow{round_}"))
                insert_s, rows = _insert_only(store, payloads, settings.ingest.batch_rows)
                insert.append(rows / insert_s)
            raw_s, ingest_s = statistics.median(raw), statistics.median(ingest)
            results[name] = {
                "messages": len(payloads),
                "events": n_events,
                "rounds": rounds,
                "produce_events_per_s": n_events / produce_s,
                "raw_msgs_per_s": len(payloads) / raw_s,
                "raw_events_per_s": n_events / raw_s,
                "ingest_events_per_s": n_events / ingest_s,
                "ingest_events_per_s_min": n_events / max(ingest),
                "ingest_events_per_s_max": n_events / min(ingest),
                "ingest_vs_raw": raw_s / ingest_s,
                "store_insert_rows_per_s": statistics.median(insert),
                "decoder": FAST_PATH,
            }
            if arrow:
                results[name]["arrow_ingest_events_per_s"] = n_events / statistics.median(arrow)
    finally:
        store.close()
        harness.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def print_ingest_bench(settings: Settings, events: int, single_messages: int, batch: int, rounds: int = 3,
                       mq: str = "redis", compare_arrow: bool = True) -> None:
    """Run the benchmark and print a table (and the machine it ran on)."""
    from rich.console import Console
    from rich.table import Table

    from fleetlens.bench.context import RunContext

    context = RunContext()
    compare_arrow = compare_arrow and FAST_PATH == NATIVE
    results = run_ingest_bench(settings, events, single_messages, batch, rounds, mq, compare_arrow)
    raw_label = (_KafkaBench if mq == "kafka" else _RedisBench).raw_label
    table = Table(title=f"fleetlens bench ingest --mq {mq} ({context.line()})")
    columns = ["case", "events", "produce ev/s", f"{raw_label} ev/s", f"ingest e2e ev/s, {FAST_PATH} decoder (min–max)",
               "ingest/raw", "store insert rows/s"]
    if compare_arrow:
        columns.append("ingest e2e ev/s, Arrow decoder")
    for column in columns:
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['events']:,}",
            f"{r['produce_events_per_s']:,.0f}",
            f"{r['raw_events_per_s']:,.0f}",
            f"{r['ingest_events_per_s']:,.0f} ({r['ingest_events_per_s_min']:,.0f}–{r['ingest_events_per_s_max']:,.0f})",
            f"{r['ingest_vs_raw']:.0%}",
            f"{r['store_insert_rows_per_s']:,.0f}",
            *([f"{r['arrow_ingest_events_per_s']:,.0f}"] if compare_arrow else []),
        )
    console = Console(width=200)
    console.print(table)
    console.print(f"medians of {next(iter(results.values()))['rounds']} rounds; raw and ingest drain the same stream")
