"""``fleetlens up``: the whole embedded pipeline in one process.

An embedded Redis-protocol server (unless one already answers at the configured url), the fleet
simulator feeding it, the ingest worker and the chDB hot store. chDB lets one process own a data
directory, so every role here is a thread of this process (see docs/architecture.md). A status
line shows throughput and lag; Ctrl-C stops the simulator, lets ingest store what is already in
the stream, then shuts everything down: nothing produced is lost.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from rich.console import Console
from rich.live import Live
from rich.text import Text

from fleetlens.contract.decode import ARROW, ARROW_FALLBACK_WARNING, FAST_PATH
from fleetlens.ingest.run import build_worker, stop_on_signals
from fleetlens.ingest.stats import IngestStats
from fleetlens.logsetup import get_logger
from fleetlens.settings import Settings
from fleetlens.simulate.config import SimulationConfig
from fleetlens.simulate.runner import run_simulation
from fleetlens.sources.factory import open_sink
from fleetlens.sources.redis_server import RedisServer, server_answers
from fleetlens.store.client import open_store

if TYPE_CHECKING:
    from fleetlens.observe.role import RoleObserver

log = get_logger(__name__)
DRAIN_TIMEOUT_S = 60.0


@dataclass
class UpOptions:
    """What ``fleetlens up`` runs."""

    rate: float
    users: int
    events_per_message: int
    simulate: bool = True
    duration_s: float | None = None
    api: bool = True
    detect: bool = True


def _start_redis(settings: Settings) -> RedisServer | None:
    url = urlparse(settings.redis.url)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    if settings.mq != "redis" or not settings.redis.embedded or server_answers(host, port):
        return None
    return RedisServer(port, settings.redis_data_path, host=host).start()


class _Simulator(threading.Thread):
    """The simulator writing to the MQ in real time until told to stop."""

    def __init__(self, settings: Settings, options: UpOptions):
        super().__init__(name="simulator", daemon=True)
        self.settings = settings
        self.options = options
        self.stop_event = threading.Event()
        self.summary = None
        self.error: BaseException | None = None
        self.simulator = None  # the running Simulator, for scenario injection

    def run(self) -> None:
        sink = open_sink(self.settings)
        try:
            config = SimulationConfig.from_settings(
                self.settings,
                rate=self.options.rate,
                users=self.options.users,
                events_per_message=self.options.events_per_message,
            )
            self.summary = run_simulation(
                config,
                sink,
                stream=self.settings.streams[0],
                labels_path=self.settings.data_dir / "labels.jsonl",
                realtime=True,
                stop=self.stop_event,
                on_start=lambda sim: setattr(self, "simulator", sim),
            )
        except BaseException as exc:  # noqa: BLE001 - reported by run_up
            self.error = exc
            log.exception("simulator failed")
        finally:
            sink.close()


def _status_line(stats: IngestStats, previous: tuple[float, int], lag: int | str) -> tuple[str, tuple[float, int]]:
    now, stored = time.monotonic(), stats.stored
    rate = (stored - previous[1]) / max(1e-9, now - previous[0])
    snap = stats.snapshot()
    line = (
        f"stored {stored:,} ({rate:,.0f}/s)  lag {lag} messages  rejected {snap['rejected']:,}  "
        f"duplicates skipped {snap['duplicates_skipped']:,}  last batch {snap['last_insert_s'] * 1000:,.0f} ms"
    )
    return line, (now, stored)


def run_up(settings: Settings, options: UpOptions) -> None:
    """Run the embedded stack until Ctrl-C (or ``duration_s``), then stop cleanly."""
    console = Console(stderr=True, soft_wrap=True)  # paths and the token stay on one line when piped
    stop = threading.Event()
    stop_on_signals(stop)  # first: a Ctrl-C during start-up still stops cleanly
    from fleetlens.observe.role import RoleObserver

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = _start_redis(settings)
    store = open_store(settings)
    stats = IngestStats()
    worker = build_worker(settings, store, stats)
    observer = RoleObserver(settings, store, worker.source, settings.ingest.group,
                            alive=lambda: worker.error is None).start(serve=not options.api)
    admin_token = _first_admin_token(settings)
    ingest_stop = threading.Event()
    ingest = threading.Thread(target=worker.run, args=(ingest_stop,), name="ingest", daemon=True)
    ingest.start()
    simulator = _Simulator(settings, options) if options.simulate else None
    if simulator:
        simulator.start()
    archiver = _start_archiver(console, settings, store)
    detector = _start_detector(console, settings, store) if options.detect else None
    api = _start_api(console, settings, store, live=(stats, worker), observer=observer,
                     simulator=(lambda: simulator.simulator) if simulator else None) if options.api else None

    where = settings.clickhouse_url or str(settings.chdb_path.resolve())
    console.print(f"[bold]fleetlens up[/]  store: {where}  mq: {_mq_address(settings)} streams: {', '.join(settings.streams)}")
    if simulator:
        console.print(
            f"simulator: {options.rate:,.0f} events/s, {options.users} users, "
            f"{options.events_per_message} events per message, labels in {settings.data_dir / 'labels.jsonl'}"
        )
    if FAST_PATH == ARROW:
        console.print(f"[yellow]{ARROW_FALLBACK_WARNING}[/]", soft_wrap=True)
    if admin_token:
        console.print(f"[bold]admin token[/] (shown once, store it now; more with `fleetlens token create`): {admin_token}",
                      soft_wrap=True, highlight=False)
    console.print("Ctrl-C stops; what is already in the stream is stored first.")

    deadline = time.monotonic() + options.duration_s if options.duration_s else None
    previous = (time.monotonic(), 0)
    # On a terminal the status is one line updated in place; in a log, a line every 5 s.
    live = Live(console=console, auto_refresh=False, transient=False) if console.is_terminal else None
    ticks = 0
    try:
        if live:
            live.start()
        while not stop.wait(1.0):
            if deadline and time.monotonic() >= deadline:
                break
            if not ingest.is_alive():
                break
            line, previous = _status_line(stats, previous, _lag(worker))
            if detector:
                line += f"  alerts {detector.stats.alerts_raised:,} raised"
            ticks += 1
            if live:
                live.update(Text(line), refresh=True)
            elif ticks % 5 == 0:
                console.print(line, highlight=False, soft_wrap=True)
    finally:
        if live:
            live.stop()
        if api:
            api.stop()
        observer.stop()
        _shutdown(console, simulator, worker, ingest, ingest_stop, stats)
        if detector:
            detector.stop()
        if archiver:
            archiver.stop()
        store.close()
        if server:
            server.stop()
    if worker.error:
        raise SystemExit(f"ingest failed: {worker.error}")


def _first_admin_token(settings: Settings) -> str | None:
    """On the first start (no token exists yet, auth on): a new admin token, else None."""
    from fleetlens.api.auth import TokenStore

    tokens = TokenStore(settings.tokens_path)
    if not settings.auth.enabled or tokens.list():
        return None
    return tokens.create("admin", "admin (first fleetlens up)")


def _start_api(console: Console, settings: Settings, store, live=None, observer: "RoleObserver | None" = None,
               simulator=None):
    """The query API in a thread of this process (chDB: one process owns the store); None if it cannot bind.

    ``live``: (stats, worker) of the ingest worker, for the dashboard's live ingest rate and lag.
    """
    from fleetlens.api.app import create_app
    from fleetlens.api.server import serve_in_thread
    from fleetlens.api.stats import LiveIngest

    app = create_app(store, settings)
    app.state.simulator = simulator  # POST /admin/scenarios injects anomalies into it
    if observer:  # /readyz of the API also covers this process' ingest: MQ reachable, lag bounded
        for name in ("mq", "lag"):
            app.state.readiness.add(name, observer.readiness.check(name))
    if live:
        app.state.live_ingest = LiveIngest(*live)
    try:
        handle = serve_in_thread(app, settings.query.host, settings.query.port)
    except Exception as exc:  # noqa: BLE001 - ingest must run even when the API port is taken
        console.print(f"[yellow]query API not started[/] on {settings.query.host}:{settings.query.port}: {exc}")
        return None
    console.print(f"query API: {handle.url}  (OpenAPI: {handle.url}/docs)")
    console.print(f"dashboard: {handle.url}/ui/")
    return handle


class _DetectorThread(threading.Thread):
    """The streaming detector in a thread of this process, writing alerts to the shared store.

    It outlives the detector's failures as a restarting container would: MQ and store outages are
    waited out inside the detector; anything else stops that detector, is logged, and a new one
    starts after ``RESTART_DELAY_S`` (it rebuilds its state from the stream and the stored alerts).
    """

    RESTART_DELAY_S = 5.0

    def __init__(self, settings: Settings, store):
        from fleetlens.detect.runner import Detector

        super().__init__(name="detector", daemon=True)
        self.settings = settings
        self.store = store
        self.detector = Detector(settings, store)
        self.stop_event = threading.Event()
        self.restarts = 0

    @property
    def stats(self):
        """The running detector's counters."""
        return self.detector.stats

    def run(self) -> None:
        from fleetlens.detect.runner import Detector

        detector = self.detector
        while not self.stop_event.is_set():
            if detector is not None:
                try:
                    detector.run(self.stop_event)
                    return
                except Exception:  # noqa: BLE001 - ingest goes on; the detector is started again
                    log.exception("detector failed; restarting", in_s=self.RESTART_DELAY_S)
            if self.stop_event.wait(self.RESTART_DELAY_S):
                return
            try:
                detector = self.detector = Detector(self.settings, self.store)
                self.restarts += 1
            except Exception:  # noqa: BLE001 - e.g. the rules file broken meanwhile: tried again later
                detector = None
                log.exception("detector could not be restarted")

    def stop(self) -> None:
        """Stop after the micro-batch in flight."""
        self.stop_event.set()
        self.join(timeout=30)


def _start_detector(console: Console, settings: Settings, store) -> _DetectorThread | None:
    """The detector thread (its own consumer group); None when the rules file is unusable."""
    try:
        thread = _DetectorThread(settings, store)
    except Exception as exc:  # noqa: BLE001 - a bad rules file must not take ingestion down
        console.print(f"[yellow]detector not started[/]: {exc}")
        return None
    thread.start()
    rules = ", ".join(r.name for r in thread.detector.engine.rules)
    console.print(f"detector: group {settings.detect.group!r}, rules: {rules}", soft_wrap=True, highlight=False)
    return thread


def _start_archiver(console: Console, settings: Settings, store):
    """The archiver thread (settings.archive.interval_s; 0: none): a run now, then every interval."""
    if not settings.archive.interval_s:
        return None
    from fleetlens.archive.schedule import ArchiveScheduler

    scheduler = ArchiveScheduler(settings, store)
    scheduler.start()
    console.print(f"archive: days older than {settings.archive.retention_days} days to "
                  f"{scheduler.archiver.target.describe()} every {settings.archive.interval_s:g} s")
    return scheduler


def _mq_address(settings: Settings) -> str:
    return f"kafka {settings.kafka.bootstrap}" if settings.mq == "kafka" else settings.redis.url


def _lag(worker) -> int | str:
    try:
        lag = worker.source.lag()
    except Exception as exc:  # noqa: BLE001 - a status line must not kill the stack
        return f"unknown ({exc.__class__.__name__})"
    return lag.total if lag.known else "unknown"


def _shutdown(console: Console, simulator: _Simulator | None, worker, ingest: threading.Thread,
              ingest_stop: threading.Event, stats: IngestStats) -> None:
    produced = None
    if simulator:
        simulator.stop_event.set()
        simulator.join()
        produced = simulator.summary.events if simulator.summary else None
    console.print("stopping: storing what is left in the stream…")
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while ingest.is_alive() and time.monotonic() < deadline:
        lag = _lag(worker)
        if lag == 0:
            break
        # Where the MQ cannot say right now (Kafka while its reader runs), count instead.
        if not isinstance(lag, int) and produced is not None and stats.stored + stats.rejected >= produced:
            break
        time.sleep(0.2)
    ingest_stop.set()
    ingest.join()
    snap = stats.snapshot()
    lag = _lag(worker)
    worker.source.close()
    summary = f"stopped. stored {snap['stored']:,} events and samples, rejected {snap['rejected']:,}, lag {lag}"
    if produced is not None:
        summary += f"; the simulator produced {produced:,}"
    console.print(summary, soft_wrap=True)
