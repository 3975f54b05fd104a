"""Where simulated MQ messages go: the configured MQ, an NDJSON file, stdout, memory.

Every sink implements ``fleetlens.sources.base.Sink`` (``send(stream, payloads, keys)`` and
``close()``). MQ producers are the transports' own (``fleetlens.sources``): ``output="mq"`` takes
whatever ``sources.factory.open_sink`` builds for the settings, so a Kafka producer added there is
the simulator's too. A sink that wants per-message keys (Kafka: ``action_id`` else ``host``) sets
``wants_keys = True``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO, Sequence

from fleetlens.settings import Settings
from fleetlens.sources import factory
from fleetlens.sources.base import Sink
from fleetlens.sources.redis import RedisStreamSink, connect


class FileSink:
    """NDJSON, one event per line: each payload (one event or an NDJSON batch) ends with a newline.

    With one event per message this is also one MQ message per line; with batches the message
    boundaries are not kept (the file is simply every event, one per line). The stream name is
    ignored.
    """

    wants_keys = False

    def __init__(self, path: Path | str | None = None, stream: BinaryIO | None = None, append: bool = False):
        if stream is None and path is None:
            raise ValueError("FileSink needs a path or a binary stream")
        self._own = stream is None
        self._out: BinaryIO = stream if stream is not None else open(path, "ab" if append else "wb")  # noqa: SIM115

    def send(self, stream: str, payloads: Sequence[bytes], keys: Sequence[str] | None = None) -> None:
        """Append the payloads, newline-terminated."""
        if payloads:
            self._out.write(b"\n".join(payloads))
            self._out.write(b"\n")

    def close(self) -> None:
        """Flush, and close the file if this sink opened it."""
        self._out.flush()
        if self._own:
            self._out.close()


def stdout_sink() -> FileSink:
    """NDJSON to standard output."""
    return FileSink(stream=sys.stdout.buffer)


class ListSink:
    """Keeps payloads in memory per stream (tests, ingest benchmarks)."""

    wants_keys = False

    def __init__(self) -> None:
        self.payloads: dict[str, list[bytes]] = {}

    def send(self, stream: str, payloads: Sequence[bytes], keys: Sequence[str] | None = None) -> None:
        """Keep the payloads."""
        self.payloads.setdefault(stream, []).extend(payloads)

    def close(self) -> None:
        """Nothing to release."""


def open_sink(output: str, settings: Settings, redis_url: str | None = None) -> Sink:
    """``mq``/``redis``: the configured MQ (``redis_url`` overrides the Redis url); ``redis://...``: that
    server; ``-`` or ``stdout``; anything else is a file path."""
    if output in ("mq", "redis"):
        if redis_url and settings.mq == "redis":
            return RedisStreamSink(connect(redis_url, socket_timeout=30))
        return factory.open_sink(settings)
    if output.startswith(("redis://", "rediss://", "valkey://", "unix://")):
        return RedisStreamSink(connect(output, socket_timeout=30))
    if output in ("-", "stdout"):
        return stdout_sink()
    return FileSink(output)
