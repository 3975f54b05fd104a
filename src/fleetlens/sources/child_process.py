"""A server run as a child process of ours (the embedded Redis, the test Kafka broker): stop or kill it."""

from __future__ import annotations

import signal
import subprocess


class ChildProcess:
    """Lifecycle of one child process held in ``self.process``; subclasses start it."""

    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self.process.pid if self.process and self.process.poll() is None else None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), killing it if it takes longer than ``timeout_s``."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
