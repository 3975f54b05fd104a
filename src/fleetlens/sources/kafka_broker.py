"""Kafka brokers (KRaft) from Maven Central, for tests and for users without Docker.

``KafkaBroker`` is one node (broker and controller in one process); ``KafkaCluster`` is N such
nodes on loopback forming one controller quorum, with replicated internal topics and a
``min.insync.replicas`` default, for fault tests (kill one broker of three).

The jars of ``org.apache.kafka:kafka_2.13`` (plus a log4j2 binding) are fetched once with
``mvn dependency:copy-dependencies`` into a cache outside the work tree
(``$FLEETLENS_KAFKA_CACHE`` or ``~/.cache/fleetlens/kafka-<version>``). A broker gets a data
directory, free loopback ports (kept across restarts, so a killed broker comes back where clients
expect it), storage formatted once, and runs as a child process stopped by its PID.

From a shell::

    python -m fleetlens.sources.kafka_broker start [--dir DIR] [--port PORT]   # prints the bootstrap address
    python -m fleetlens.sources.kafka_broker stop [--dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from fleetlens.sources.child_process import ChildProcess
from fleetlens.sources.redis_server import free_port, require_port_free

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
_READY_FILE = ".complete"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fleetlens</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

# Broker logs go to a file at WARN: the console stays quiet, the file explains a failed start.
_LOG4J2 = """status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:fleetlens.broker.log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
"""

# Fast JVM start for the short-lived storage formatting; the broker itself keeps the full JIT.
_QUICK_JVM = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto"]


def cache_dir(version: str = KAFKA_VERSION) -> Path:
    """Where the broker's jars are cached (outside any work tree)."""
    root = os.environ.get("FLEETLENS_KAFKA_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "fleetlens" / f"kafka-{version}"


def fetch_jars(version: str = KAFKA_VERSION) -> Path:
    """The directory holding every runtime jar of the broker; downloads them with Maven the first time."""
    home = cache_dir(version)
    libs = home / "libs"
    if (libs / _READY_FILE).exists():
        return libs
    if not shutil.which("mvn"):
        raise RuntimeError("Maven (mvn) is needed once to fetch the Kafka broker jars from Maven Central")
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
    staging = home / f"libs.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
        cwd=home,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"mvn could not fetch kafka_2.13:{version}: {(result.stdout + result.stderr)[-3000:]}")
    (staging / _READY_FILE).touch()
    try:
        staging.rename(libs)  # atomic: a concurrent fetch either wins or finds the finished folder
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return libs


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (what ``random-uuid`` prints)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaBroker(ChildProcess):
    """One KRaft broker+controller process on loopback with its data in ``data_dir``.

    Alone by default; ``KafkaCluster`` makes several of them one cluster (``node_id``, the shared
    ``voters`` list and ``cluster_id``, ``replication`` for the internal topics, ``min_insync``).
    """

    def __init__(self, data_dir: Path, port: int | None = None, controller_port: int | None = None,
                 version: str = KAFKA_VERSION, heap: str = "512m", *, node_id: int = 1, voters: str | None = None,
                 cluster_id: str | None = None, replication: int = 1, min_insync: int = 1):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.version = version
        self.heap = heap
        self.node_id = node_id
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.cluster_id = cluster_id
        self.replication = replication
        self.min_insync = min_insync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's own log (warnings and errors)."""
        return self.data_dir / "broker.log"

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.voters}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data_dir / 'logs'}",
                    "num.partitions=3",
                    f"default.replication.factor={self.replication}",
                    f"min.insync.replicas={self.min_insync}",
                    f"offsets.topic.replication.factor={self.replication}",
                    "offsets.topic.num.partitions=3",  # 50 by default: slow to create on a first group
                    f"transaction.state.log.replication.factor={self.replication}",
                    f"transaction.state.log.min.isr={self.min_insync}",
                    f"share.coordinator.state.topic.replication.factor={self.replication}",
                    f"share.coordinator.state.topic.min.isr={self.min_insync}",
                    "group.initial.rebalance.delay.ms=0",
                    "group.min.session.timeout.ms=2000",
                    "auto.create.topics.enable=true",
                    # A restart after kill -9 waits until the controller fences the old incarnation
                    # (broker.session.timeout.ms, 9 s by default): short here so fault tests recover fast.
                    "broker.session.timeout.ms=2000",
                    "broker.heartbeat.interval.ms=500",
                    "",
                ]
            )
        )
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        return config

    def _java(self, libs: Path, main: str, *args: str, jvm: list[str]) -> list[str]:
        java = shutil.which("java")
        if not java:
            raise RuntimeError("Java (17+) is needed to run the Kafka broker")
        return [
            java, *jvm,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dfleetlens.broker.log={self.log_file}",
            "-cp", f"{libs}/*", main, *args,
        ]

    def _format(self, libs: Path, config: Path) -> None:
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cluster_id = self.cluster_id or _cluster_id()
        # --cluster-id=…: an id starting with "-" (1 in 64) would otherwise read as an option
        cmd = self._java(libs, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config),
                         jvm=_QUICK_JVM)
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {(result.stdout + result.stderr)[-2000:]}")

    def start(self, timeout_s: float = 60.0) -> "KafkaBroker":
        """Format storage if new, start the broker and wait until it serves metadata."""
        self.launch()
        self._wait_ready(timeout_s)
        return self

    def launch(self) -> None:
        """Format storage if new and start the process without waiting (a cluster starts all nodes first)."""
        libs = fetch_jars(self.version)
        for port in (self.port, self.controller_port):
            require_port_free(port, what=f"Kafka broker {self.node_id}")
        config = self._write_config()
        self._format(libs, config)
        cmd = self._java(libs, "kafka.Kafka", str(config), jvm=[f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC"])
        with open(self.data_dir / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self._write_state()

    def _wait_ready(self, timeout_s: float, brokers: int = 1) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0, "logger": _SILENT})
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Kafka broker exited at start (code {self.process.returncode}); see {self.log_file}")
            try:
                if len(admin.list_topics(timeout=1).brokers) >= brokers:
                    return
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"Kafka broker on {self.bootstrap} not ready after {timeout_s}s; see {self.log_file}")
            time.sleep(0.1)

    def _write_state(self) -> None:
        state = {"pid": self.pid, "port": self.port, "controller_port": self.controller_port, "version": self.version}
        (self.data_dir / "broker.json").write_text(json.dumps(state))

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop gracefully (SIGTERM: controlled shutdown), killing it if it takes longer than ``timeout_s``."""
        super().stop(timeout_s)

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would; ``start`` brings it back on the same ports and data."""
        super().kill()

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class KafkaCluster:
    """``size`` KRaft nodes (each broker and controller) on loopback forming one cluster.

    Internal topics are replicated ``size`` times (at most 3) and topics default to that
    replication factor with ``min.insync.replicas`` = ``min_insync``; so with 3 nodes and
    ``min_insync=2`` one node can die without losing an acknowledged write or stopping producers
    that use ``acks=all``. Node ``i`` keeps its data in ``data_dir/node-i`` and its ports across
    restarts (``nodes[i].kill()`` then ``nodes[i].start()``).
    """

    def __init__(self, data_dir: Path, size: int = 3, min_insync: int = 2, version: str = KAFKA_VERSION,
                 heap: str = "384m"):
        self.data_dir = Path(data_dir).resolve()
        controller_ports = [free_port() for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{port}" for i, port in enumerate(controller_ports))
        cluster_id = _cluster_id()
        self.nodes = [
            KafkaBroker(self.data_dir / f"node-{i + 1}", controller_port=controller_ports[i], version=version, heap=heap,
                        node_id=i + 1, voters=voters, cluster_id=cluster_id, replication=min(size, 3),
                        min_insync=min_insync)
            for i in range(size)
        ]

    @property
    def bootstrap(self) -> str:
        """Every node's ``host:port``, comma-separated."""
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self, timeout_s: float = 120.0) -> "KafkaCluster":
        """Start every node, then wait until each one serves metadata listing all brokers."""
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node._wait_ready(timeout_s, brokers=len(self.nodes))
        return self

    def kill(self) -> None:
        """Kill every node (SIGKILL)."""
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> "KafkaCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class _Silent:
    """A logger for librdkafka that drops everything (connection refused while the broker boots)."""

    def log(self, *args: object, **kwargs: object) -> None:
        pass


_SILENT = _Silent()


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetlens.sources.kafka_broker", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "fetch"], help="start a broker, stop it, or only fetch the jars")
    parser.add_argument("--dir", type=Path, default=Path("fleetlens-data/kafka"), help="the broker's data directory")
    parser.add_argument("--port", type=int, default=None, help="client port (default: the previous one, else a free one)")
    args = parser.parse_args(argv)
    if args.action == "fetch":
        print(fetch_jars())
        return 0
    state_file = args.dir / "broker.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if args.action == "stop":
        pid = state.get("pid")
        if not pid:
            print("no broker recorded in", args.dir)
            return 1
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            print("broker", pid, "was not running")
            return 0
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                print("broker", pid, "stopped")
                return 0
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        print("broker", pid, "killed")
        return 0
    broker = KafkaBroker(args.dir, port=args.port or state.get("port"), controller_port=state.get("controller_port"))
    broker.start()
    print(broker.bootstrap)
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
