"""An alert: one episode of one rule's condition holding for one key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

Change = Literal["firing", "update", "resolved"]


def alert_id(rule: str, key: str, first_window_ms: int) -> str:
    """Deterministic id: the same rule, key and first window always give the same id."""
    return hashlib.blake2b(f"{rule}\x1f{key}\x1f{first_window_ms}".encode(), digest_size=10).hexdigest()


@dataclass
class Alert:
    """What sinks receive; ``ts_start``/``ts_end`` are event times (epoch ms) of the first and last hit."""

    id: str
    rule: str
    key: str
    severity: str
    ts_start: int
    ts_end: int
    status: Literal["firing", "resolved"] = "firing"
    evidence: dict[str, Any] = field(default_factory=dict)
    hits: int = 1

    def to_json(self) -> dict[str, Any]:
        """The alert as a JSON-ready dict (webhook body, MQ message)."""
        return {
            "id": self.id,
            "rule": self.rule,
            "key": self.key,
            "severity": self.severity,
            "ts_start": self.ts_start,
            "ts_end": self.ts_end,
            "status": self.status,
            "hits": self.hits,
            "evidence": self.evidence,
        }
