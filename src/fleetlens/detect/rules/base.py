"""What every rule does: look at each micro-batch, close windows as the watermark moves."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from fleetlens.detect.frame import Frame
from fleetlens.detect.hits import Hit

SAMPLE_IDS = 5  # event ids kept as evidence


class Rule(ABC):
    """One detection rule over micro-batches of events (see ``docs/detect.md``)."""

    def __init__(self, name: str, config: Any, allowed_lateness_ms: int):
        self.name = name
        self.config = config
        self.allowed_lateness_ms = allowed_lateness_ms

    @property
    @abstractmethod
    def horizon_ms(self) -> int:
        """How much event history the rule's state covers (what a restart must re-read)."""

    @abstractmethod
    def observe(self, frame: Frame, watermark_ms: int) -> list[Hit]:
        """Take in one micro-batch (late rows already removed); hits that are certain now."""

    def advance(self, watermark_ms: int) -> list[Hit]:
        """The watermark moved: hits of windows that closed; forget what is older than needed."""
        return []

    def hit(self, key: str, start_ms: int, end_ms: int, trigger_ms: int, **evidence: Any) -> Hit:
        """A hit of this rule with its configured severity."""
        return Hit(self.name, key, int(start_ms), int(end_ms), self.config.severity, evidence, int(trigger_ms))
