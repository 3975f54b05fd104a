"""The detection rules; ``build_rules`` makes the enabled ones from a ``RulesConfig``."""

from __future__ import annotations

from fleetlens.detect.config import RulesConfig
from fleetlens.detect.rules.base import Rule
from fleetlens.detect.rules.baselines import ErrorRateSpikeRule, LatencyRegressionRule, TrafficDropRule
from fleetlens.detect.rules.instant import ErrorLogRule, ProviderErrorStreakRule
from fleetlens.detect.rules.refunds import RefundCyclesRule
from fleetlens.detect.rules.resources import SaturationRule
from fleetlens.detect.rules.windowed import IdenticalOperationBurstRule, PaymentFailuresRule

EVENT_RULES = {
    "provider_error_streak": ProviderErrorStreakRule,
    "error_log": ErrorLogRule,
    "payment_failures_same_provider": PaymentFailuresRule,
    "identical_operation_burst": IdenticalOperationBurstRule,
    "buy_then_refund": RefundCyclesRule,
    "refund_repeat_offender": RefundCyclesRule,
    "error_rate_spike": ErrorRateSpikeRule,
    "latency_regression": LatencyRegressionRule,
    "traffic_drop": TrafficDropRule,
    "cpu_saturation": SaturationRule,
    "ram_saturation": SaturationRule,
}


def build_rules(config: RulesConfig, only: set[str] | None = None) -> list[Rule]:
    """The enabled event-driven rules (``ingest_lag`` is watched by the runner, not by events)."""
    rules: list[Rule] = []
    for name, cls in EVENT_RULES.items():
        rule_config = getattr(config, name)
        if rule_config.enabled and (only is None or name in only):
            rules.append(cls(name, rule_config, int(config.allowed_lateness_s * 1000)))
    return rules
