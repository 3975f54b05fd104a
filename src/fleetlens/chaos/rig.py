"""The servers a chaos run breaks, and a producer that survives breaking them.

A ``Rig`` owns the MQ of one run (a Redis-protocol server, one Kafka broker, or a Kafka cluster),
the data directory of the roles, and the environment a role process needs to find both. Its
producer writes simulated traffic and keeps going through MQ outages without ever writing a
message twice: Redis entries get explicit, increasing ids (a retried ``XADD`` of an entry that
made it before the outage is refused as "equal or smaller", i.e. already there); Kafka uses the
idempotent producer with ``acks=all``. So any loss or duplicate a run finds is fleetlens' doing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import redis

from fleetlens.logsetup import get_logger
from fleetlens.settings import Settings
from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.runner import SimulationSummary, run_simulation
from fleetlens.simulate.scenarios import ScenarioSpec
from fleetlens.sources.redis import DATA_FIELD, connect
from fleetlens.sources.redis_server import RedisServer, free_port

log = get_logger(__name__)

STREAM = "fleet.events"
DLQ = "fleet.events.dlq"
START_MS = 1_795_000_000_000  # simulated time of every chaos run (2026-11-18)


class IdempotentRedisSink:
    """XADD with explicit ids ``<epoch ms at creation>-<n>``: retrying after an outage never duplicates."""

    def __init__(self, url: str, stream: str = STREAM, chunk: int = 500, retry_for_s: float = 300.0):
        self.client = connect(url, socket_timeout=10, socket_connect_timeout=1)
        last = self.client.xrevrange(stream, count=1) if self.client.exists(stream) else []
        last_ms = int(last[0][0].split(b"-")[0]) if last else 0
        self.base_ms = max(int(time.time() * 1000), last_ms + 1)  # after every entry already there
        self.seq = 0
        self.chunk = chunk
        self.retry_for_s = retry_for_s
        self.retries = 0

    def send(self, stream: str, payloads: Sequence[bytes], keys: Sequence[str] | None = None) -> None:
        """Append the payloads in order, retrying through connection failures."""
        for start in range(0, len(payloads), self.chunk):
            part = payloads[start : start + self.chunk]
            first = self.seq + 1
            self.seq += len(part)
            deadline = time.monotonic() + self.retry_for_s
            while True:
                try:
                    self._xadd(stream, part, first)
                    break
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                    if time.monotonic() > deadline:
                        raise
                    self.retries += 1
                    log.debug("producer retrying", error=str(exc)[:200])
                    time.sleep(0.2)

    def _xadd(self, stream: str, part: Sequence[bytes], first: int) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for i, payload in enumerate(part):
                pipe.xadd(stream, {DATA_FIELD: payload}, id=f"{self.base_ms}-{first + i}")
            for result in pipe.execute(raise_on_error=False):
                if isinstance(result, redis.ResponseError) and "equal or smaller" not in str(result):
                    raise result
                if isinstance(result, (redis.ConnectionError, redis.TimeoutError)):
                    raise result

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


@dataclass
class Production:
    """A simulation running into the rig's MQ on a thread; ``summary`` once ``join`` returned."""

    thread: threading.Thread
    stop: threading.Event
    summary: SimulationSummary | None = None
    error: BaseException | None = None

    def join(self, timeout_s: float | None = None) -> SimulationSummary:
        """Wait for the producer; raise what it raised."""
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            raise TimeoutError("producer still running")
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


@dataclass
class Rig:
    """One chaos run's MQ, data directory and the role environment pointing at them."""

    work_dir: Path
    mq: str = "redis"
    redis: RedisServer | None = None
    kafka: object | None = None  # KafkaBroker or KafkaCluster
    replication: int = 1
    env_extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def with_redis(cls, work_dir: Path, appendfsync: str = "always") -> "Rig":
        """A fresh Redis-protocol server; ``always`` fsyncs before answering, so a SIGKILLed server loses no write it acknowledged."""
        server = RedisServer(free_port(), Path(work_dir) / "redis", appendfsync=appendfsync).start()
        return cls(Path(work_dir), "redis", redis=server)

    @classmethod
    def with_kafka(cls, work_dir: Path, brokers: int = 1) -> "Rig":
        """A fresh Kafka broker, or a cluster of ``brokers`` nodes (replication 3, min.insync.replicas 2)."""
        from fleetlens.sources.kafka_broker import KafkaBroker, KafkaCluster

        if brokers == 1:
            return cls(Path(work_dir), "kafka", kafka=KafkaBroker(Path(work_dir) / "kafka").start())
        cluster = KafkaCluster(Path(work_dir) / "kafka", size=brokers, min_insync=2).start()
        return cls(Path(work_dir), "kafka", kafka=cluster, replication=min(brokers, 3))

    @property
    def data_dir(self) -> Path:
        """Where the roles keep their data (the embedded store)."""
        return self.work_dir / "data"

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers."""
        return self.kafka.bootstrap  # type: ignore[union-attr]

    def env(self) -> dict[str, str]:
        """FLEETLENS_* variables that point a role process at this rig."""
        env = {
            "FLEETLENS_DATA_DIR": str(self.data_dir),
            "FLEETLENS_MQ": self.mq,
            "FLEETLENS_STREAMS": f'["{STREAM}"]',
            "FLEETLENS_DLQ_STREAM": DLQ,
            # Outages here last seconds: retry often (the default backs off up to 30 s between tries).
            "FLEETLENS_INGEST__INSERT_RETRY_MAX_S": "1",
        }
        if "observe" in Settings.model_fields:  # a role's own metrics server: any free port, runs may overlap
            env["FLEETLENS_OBSERVE__PORT"] = "0"
        if self.mq == "redis":
            env |= {"FLEETLENS_REDIS__URL": self.redis.url, "FLEETLENS_REDIS__BLOCK_MS": "50"}  # type: ignore[union-attr]
        else:
            env |= {
                "FLEETLENS_KAFKA__BOOTSTRAP": self.bootstrap,
                "FLEETLENS_KAFKA__SESSION_TIMEOUT_MS": "6000",
                "FLEETLENS_KAFKA__REPLICATION_FACTOR": str(self.replication),
            }
        return env | self.env_extra

    def settings(self) -> Settings:
        """The same configuration as a settings object, for roles run inside this process."""
        # The harness's own clients (producer, probes) log only critical errors: the broker being
        # down is the point of a run, and a screen of "Connection refused" hid its progress lines.
        kafka = {"bootstrap": self.bootstrap, "session_timeout_ms": 6000, "replication_factor": self.replication,
                 "options": {"log_level": "2"}} if self.mq == "kafka" else {}
        return Settings(
            data_dir=self.data_dir, mq=self.mq, streams=[STREAM], dlq_stream=DLQ,  # type: ignore[arg-type]
            redis={"url": self.redis.url, "block_ms": 50} if self.redis else {},  # type: ignore[arg-type]
            kafka=kafka,  # type: ignore[arg-type]
            ingest={"insert_retry_max_s": 1},  # type: ignore[arg-type]
        )

    # -- producing ------------------------------------------------------------------------------

    def sink(self):
        """A producer that survives MQ outages without duplicates (see the module docstring)."""
        if self.mq == "redis":
            return IdempotentRedisSink(self.redis.url)  # type: ignore[union-attr]
        from fleetlens.sources.kafka import KafkaSink, ensure_topics

        settings = self.settings().kafka
        ensure_topics(settings, [STREAM, DLQ])
        return KafkaSink(settings)

    @property
    def labels_path(self) -> Path:
        """The labels file of the injected scenarios (written by ``produce``)."""
        return self.work_dir / "labels.ndjson"

    def produce(self, events: int, seed: int, events_per_message: int = 20, rate: float | None = None,
                users: int = 300, scenarios: Sequence[str] = (), event_rate: float | None = None,
                **options: object) -> SimulationSummary:
        """Write ``events`` simulated events now (paced at ``rate`` events/s when given); returns the summary.

        ``scenarios`` (simulator specs, e.g. ``provider_outage@200+120``) are injected into the
        traffic, their labels written to ``labels_path``. ``options`` are further ``SimulationConfig``
        fields (``start_ms``, ``duration_s``, ``count=None``, ...); ``event_rate`` sets the events per
        second of event time without pacing the sending (``rate`` does both).
        """
        fields: dict = {"start_ms": START_MS, "rate": rate or event_rate or 2000.0, "count": events, **options}
        config = SimulationConfig(seed=seed, events_per_message=events_per_message, users=users,
                                  scenarios=tuple(ScenarioSpec.parse(s) for s in scenarios), **fields)
        sink = self.sink()
        try:
            return run_simulation(config, sink, stream=STREAM, realtime=rate is not None,
                                  labels_path=self.labels_path if scenarios else None)
        finally:
            sink.close()

    def produce_in_background(self, events: int, seed: int, rate: float, events_per_message: int = 20) -> Production:
        """``produce`` on a thread, paced at ``rate`` events/s."""
        stop = threading.Event()
        production = Production(threading.Thread(target=lambda: None), stop)

        def run() -> None:
            try:
                production.summary = self.produce(events, seed, events_per_message, rate)
            except BaseException as exc:  # noqa: BLE001 - handed to join()
                production.error = exc

        production.thread = threading.Thread(target=run, name="chaos-producer", daemon=True)
        production.thread.start()
        return production

    def send_paced(self, payloads: list[bytes], events_per_message: int, rate: float) -> Production:
        """Send ready-made payloads on a thread at ``rate`` events/s (no generation cost while offering)."""
        stop = threading.Event()
        production = Production(threading.Thread(target=lambda: None), stop)
        per_tick = max(1, int(rate / events_per_message / 20))  # 20 sends per second

        def run() -> None:
            sink = self.sink()
            try:
                started = time.monotonic()
                for i in range(0, len(payloads), per_tick):
                    due = started + i * events_per_message / rate
                    if due > time.monotonic():
                        time.sleep(due - time.monotonic())
                    sink.send(STREAM, payloads[i : i + per_tick])
                production.summary = SimulationSummary(
                    events=sum(p.count(b"\n") + 1 for p in payloads), messages=len(payloads),
                    wall_seconds=time.monotonic() - started)
            except BaseException as exc:  # noqa: BLE001 - handed to join()
                production.error = exc
            finally:
                sink.close()

        production.thread = threading.Thread(target=run, name="chaos-paced-producer", daemon=True)
        production.thread.start()
        return production

    # -- watching ---------------------------------------------------------------------------------

    def acknowledged(self, group: str) -> int:
        """Messages the consumer group has acknowledged (Redis) or committed (Kafka) so far; 0 if unknown."""
        try:
            if self.mq == "redis":
                client = connect(self.redis.url, socket_timeout=5, socket_connect_timeout=1)  # type: ignore[union-attr]
                try:
                    if not client.exists(STREAM):
                        return 0
                    for info in client.xinfo_groups(STREAM):
                        if info["name"].decode() == group:
                            return int(info["entries-read"] or 0) - int(info["pending"])
                finally:
                    client.close()
                return 0
            return self._kafka_committed(group)
        except Exception:  # noqa: BLE001 - the MQ is down: unknown now
            return -1

    def _kafka_committed(self, group: str) -> int:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "log_level": 0})
        try:
            meta = consumer.list_topics(STREAM, timeout=5).topics.get(STREAM)
            if meta is None or not meta.partitions:
                return 0
            offsets = consumer.committed([TopicPartition(STREAM, p) for p in meta.partitions], timeout=5)
            return sum(max(0, tp.offset) for tp in offsets)
        finally:
            consumer.close()

    def dead_letters(self) -> list[dict[bytes, bytes]]:
        """Every entry of the Redis dead-letter stream (field → value)."""
        client = connect(self.redis.url)  # type: ignore[union-attr]
        try:
            out: list[dict[bytes, bytes]] = []
            last = "-"
            while True:
                entries = client.xrange(DLQ, min=last, max="+", count=10_000)
                if last != "-":
                    entries = entries[1:]
                if not entries:
                    return out
                out.extend(fields for _, fields in entries)
                last = entries[-1][0].decode()
        finally:
            client.close()

    def close(self) -> None:
        """Stop the servers (SIGKILL: nothing of a chaos run is kept)."""
        if self.redis is not None:
            self.redis.kill()
        if self.kafka is not None:
            self.kafka.kill()  # type: ignore[attr-defined]

    def __enter__(self) -> "Rig":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
