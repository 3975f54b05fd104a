"""The rules file: which rules run, their thresholds, windows and severities.

A YAML file (``settings.detect.rules_file``) overrides any of the defaults below; keys it does
not name keep their default, unknown keys are errors. ``fleetlens detect rules`` prints the
effective rules; ``docs/detect.md`` lists the defaults with what each field means.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "critical"]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run this rule.")
    severity: Severity = Field("warning", description="Severity of its alerts.")


class ProviderErrorStreak(_Rule):
    """Instant: a payment provider fails this many payment attempts in a row (timeouts, 5xx)."""

    severity: Severity = "critical"
    streak: int = Field(5, ge=1, description="Consecutive failed attempts on one provider that fire.")
    error_codes: list[str] = Field(["provider_timeout", "provider_503"], description="Error codes that count as the provider failing.")


class ErrorLog(_Rule):
    """Instant: one `error` log whose event_type is in the list."""

    severity: Severity = "critical"
    event_types: list[str] = Field(["crash", "fatal", "data_loss"], description="event_type values that alert on their own.")


class PaymentFailuresSameProvider(_Rule):
    """At least `min_users` distinct users whose purchase saw `min_failures` failed attempts (retries failing) on one provider within `window_s`."""

    severity: Severity = "critical"
    min_users: int = Field(3, ge=1, description="Distinct users failing on the provider.")
    min_failures: int = Field(2, ge=1, description="Failed attempts of one purchase (action_id) for its user to count.")
    error_codes: list[str] = Field(["provider_timeout", "provider_503"], description="Error codes that count as the provider failing (not e.g. card_declined).")
    window_s: int = Field(120, ge=1, description="Sliding window length.")


class IdenticalOperationBurst(_Rule):
    """One user repeating the same operation (same operation, amount and page; without an amount, the same order) `min_repeats` times within `window_s`."""

    min_repeats: int = Field(10, ge=2, description="Repeats of one identical operation that fire.")
    window_s: int = Field(60, ge=1, description="Sliding window length.")
    operations: list[str] = Field(
        ["reserve", "cancel_reservation", "buy", "refund", "payment_attempt"],
        description="Operations watched (page_view is left out: people do reload pages).",
    )


class BuyThenRefund(_Rule):
    """A user buys and then refunds the same order `min_cycles` times within `window_s`."""

    min_cycles: int = Field(2, ge=1, description="Buy→refund cycles (distinct orders) that fire.")
    window_s: int = Field(1800, ge=1, description="Window over the refunds' times.")
    pair_within_s: int = Field(3600, ge=1, description="A refund pairs with a buy of the same order at most this much later (bounds the buys kept in memory).")


class RefundRepeatOffender(BuyThenRefund):
    """The same as buy_then_refund over a longer window: users who keep doing it."""

    min_cycles: int = Field(5, ge=1, description="Buy→refund cycles (distinct orders) that fire.")
    window_s: int = Field(86_400, ge=1, description="Window over the refunds' times.")


class _BaselineRule(_Rule):
    baseline_minutes: int = Field(10, ge=1, description="Closed minutes the baseline (median) is taken over.")
    min_baseline_minutes: int = Field(3, ge=1, description="No alert before this many baseline minutes were seen.")


class ErrorRateSpike(_BaselineRule):
    """A service's share of `error` logs in a minute against the median of its recent minutes."""

    factor: float = Field(5.0, gt=1, description="Fires when the minute's error share exceeds factor × the baseline share...")
    floor: float = Field(0.05, ge=0, le=1, description="...and exceeds this absolute share...")
    min_errors: int = Field(10, ge=1, description="...with at least this many error logs in the minute.")


class LatencyRegression(_BaselineRule):
    """p95 of an operation's duration_ms in a minute against the median p95 of its recent minutes."""

    factor: float = Field(3.0, gt=1, description="Fires when the minute's p95 exceeds factor × the baseline p95.")
    min_samples: int = Field(20, ge=1, description="Operations in the minute needed to judge it.")


class TrafficDrop(_BaselineRule):
    """Page views in a minute far below the median of recent minutes."""

    ratio: float = Field(0.3, gt=0, lt=1, description="Fires when the minute's page views fall below ratio × the baseline.")
    min_baseline: float = Field(30.0, ge=1, description="Only judged when the baseline has at least this many page views a minute.")


class Saturation(_Rule):
    """Every sample of a host's metric at or above `threshold` for `for_s` seconds."""

    metric: str = Field("cpu_percent", description="Metric name (kind=metric, host-level samples: pod empty).")
    threshold: float = Field(95.0, description="Value at or above which the host is saturated.")
    for_s: int = Field(60, ge=1, description="How long every sample must stay saturated (tumbling windows).")
    min_samples: int = Field(3, ge=1, description="Samples in the window needed to judge it.")


class IngestLag(_Rule):
    """The ingest consumer group's lag (messages not yet stored) stays above `max_messages`."""

    max_messages: int = Field(100_000, ge=1, description="Lag above which ingestion is falling behind.")
    for_s: float = Field(30.0, ge=0, description="How long the lag must stay above the bound.")
    group: str = Field("ingest", description="Consumer group whose lag is watched.")


class RulesConfig(BaseModel):
    """Every rule with its settings; keys mirror the rule names in alerts."""

    model_config = ConfigDict(extra="forbid")

    allowed_lateness_s: float = Field(10.0, ge=0, description="Events up to this much older than the newest event of their partition still count; older ones are counted as late.")
    cooldown_s: float = Field(300.0, ge=0, description="A condition that fires again within this long of its last hit continues the same alert; after this long without hits the alert resolves.")

    provider_error_streak: ProviderErrorStreak = Field(default_factory=ProviderErrorStreak)
    error_log: ErrorLog = Field(default_factory=ErrorLog)
    payment_failures_same_provider: PaymentFailuresSameProvider = Field(default_factory=PaymentFailuresSameProvider)
    identical_operation_burst: IdenticalOperationBurst = Field(default_factory=IdenticalOperationBurst)
    buy_then_refund: BuyThenRefund = Field(default_factory=BuyThenRefund)
    refund_repeat_offender: RefundRepeatOffender = Field(default_factory=RefundRepeatOffender)
    error_rate_spike: ErrorRateSpike = Field(default_factory=ErrorRateSpike)
    latency_regression: LatencyRegression = Field(default_factory=LatencyRegression)
    traffic_drop: TrafficDrop = Field(default_factory=TrafficDrop)
    cpu_saturation: Saturation = Field(default_factory=Saturation)
    ram_saturation: Saturation = Field(default_factory=lambda: Saturation(metric="mem_percent", threshold=95.0))
    ingest_lag: IngestLag = Field(default_factory=IngestLag)


def load_rules(path: Path | str | None) -> RulesConfig:
    """The defaults, overridden by the YAML file at ``path`` (None: defaults only)."""
    if path is None:
        return RulesConfig()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"rules file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"rules file {path}: expected a mapping of rule names to settings")
    return RulesConfig.model_validate(data)


def dump_rules(rules: RulesConfig) -> str:
    """The rules as YAML (what a rules file with every key would say)."""
    return yaml.safe_dump(rules.model_dump(mode="json"), sort_keys=False)
