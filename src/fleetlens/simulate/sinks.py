"""Where simulated MQ messages go: a Redis stream, an NDJSON file, stdout.

Every sink implements ``fleetlens.sources.base.Sink`` (``send(stream, payloads, keys)`` and
``close()``), so a Kafka producer can be added beside these without touching the runner. A sink that
wants per-message keys (Kafka: ``action_id`` else ``host``) sets ``wants_keys = True``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO, Sequence

import redis

from fleetlens.sources.base import Sink


class RedisStreamSink:
    """XADD each payload as field ``data``, pipelined (no MULTI) in chunks."""

    wants_keys = False

    def __init__(self, url: str | None = None, client: redis.Redis | None = None, chunk: int = 1000,
                 maxlen: int | None = None):
        self.client = client or redis.Redis.from_url(url or "redis://127.0.0.1:6379/0")
        self.chunk = chunk
        self.maxlen = maxlen  # approximate trim; None keeps everything

    def send(self, stream: str, payloads: Sequence[bytes], keys: Sequence[str] | None = None) -> None:
        """Write the payloads in order; returns once the server answered every XADD."""
        for i in range(0, len(payloads), self.chunk):
            pipe = self.client.pipeline(transaction=False)
            for payload in payloads[i : i + self.chunk]:
                pipe.xadd(stream, {"data": payload}, maxlen=self.maxlen, approximate=True)
            pipe.execute()

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()


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


def open_sink(output: str, redis_url: str) -> Sink:
    """``redis`` (the url), ``redis://...``, ``-`` or ``stdout``, else a file path."""
    if output == "redis":
        return RedisStreamSink(redis_url)
    if output.startswith(("redis://", "rediss://", "unix://")):
        return RedisStreamSink(output)
    if output in ("-", "stdout"):
        return stdout_sink()
    return FileSink(output)
