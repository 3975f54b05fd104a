"""What a rule reports: a hit, one (rule, key, window) where its condition holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Hit:
    """One (rule, key, window) whose condition holds; ``evidence`` says why (counts, thresholds, sample ids)."""

    rule: str
    key: str
    start_ms: int  #: window start (instant rules: the event's time)
    end_ms: int  #: window end, exclusive (instant rules: the event's time + 1)
    severity: str
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)
    trigger_ms: int = 0  #: event time of the event that made the condition true
