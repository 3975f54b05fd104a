"""Precision and recall of alerts against the simulator's labels (ground truth of injected anomalies).

An alert of rule R on key K matches a label when R is one of the label's expected rules and K is
its key, and the alert's [ts_start, ts_end] overlaps the label's window widened by ``slack_ms``
(windowed rules fire up to a window after the anomaly began). Alerts the label lists as side
effects are neither true nor false positives. Recall: every (label, expected rule) pair needs
at least one matching alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from fleetlens.alerts.model import Alert


@dataclass
class RuleScore:
    """Counts of one rule."""

    alerts: int = 0
    true_alerts: int = 0
    side_effects: int = 0
    expected: int = 0
    found: int = 0
    false_alerts: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """True alerts over alerts that were judged (1.0 when there were none)."""
        judged = self.alerts - self.side_effects
        return self.true_alerts / judged if judged else 1.0

    @property
    def recall(self) -> float:
        """Found over expected (1.0 when nothing was expected)."""
        return self.found / self.expected if self.expected else 1.0


def _label_key(label: dict[str, Any]) -> str:
    return next(iter(label["key"].values()))


def _overlaps(alert: Alert, label: dict[str, Any], slack_ms: int) -> bool:
    start = label["start_ms"] - slack_ms
    end = max(label["end_ms"], label.get("last_event_ms") or 0) + slack_ms
    return alert.ts_start <= end and alert.ts_end >= start


def score(alerts: Iterable[Alert], labels: list[dict[str, Any]], slack_ms: int = 300_000) -> dict[str, RuleScore]:
    """Per rule: alerts, true alerts, expected and found label pairs."""
    alerts = list(alerts)
    scores: dict[str, RuleScore] = {}
    for alert in alerts:
        s = scores.setdefault(alert.rule, RuleScore())
        s.alerts += 1
        if any(alert.rule in lab["expected_rules"] and alert.key == _label_key(lab) and _overlaps(alert, lab, slack_ms)
               for lab in labels):
            s.true_alerts += 1
        elif any({"rule": alert.rule, "key": alert.key} in lab.get("side_effects", []) and _overlaps(alert, lab, slack_ms)
                 for lab in labels):
            s.side_effects += 1
        else:
            s.false_alerts.append(f"{alert.key}@{alert.ts_start}")
    for lab in labels:
        for rule in lab["expected_rules"]:
            s = scores.setdefault(rule, RuleScore())
            s.expected += 1
            if any(a.rule == rule and a.key == _label_key(lab) and _overlaps(a, lab, slack_ms) for a in alerts):
                s.found += 1
            else:
                s.missed.append(lab["id"])
    return scores
