"""What one simulation run is told: fleet size, traffic, run length, injected anomalies."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from fleetlens.settings import Settings
from fleetlens.simulate.scenarios import ScenarioSpec


def parse_start(value: str | int | float | datetime | None) -> int:
    """Start of simulated time as epoch milliseconds.

    Accepts an RFC 3339 string (``2026-11-22T10:00:00Z``), a datetime (naive means UTC), epoch
    milliseconds, or None for now rounded down to the second.
    """
    if value is None:
        return int(time.time()) * 1000
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(round(value.timestamp() * 1000))


@dataclass(frozen=True)
class SimulationConfig:
    """Options of one run; same config (with an explicit ``start_ms``), same bytes.

    The run ends at ``duration_s`` simulated seconds or after ``count`` events, whichever comes
    first; with neither it runs until stopped.
    """

    seed: int = 42
    rate: float = 2000.0  # mean events per simulated second (event time)
    users: int = 500
    services: int = 7  # the 7 checkout services; fewer drops from the end, more adds supporting ones
    replicas: int = 2  # pods per service
    hosts: int = 4
    providers: int = 4  # payment providers (1..4)
    start_ms: int = field(default_factory=lambda: parse_start(None))
    duration_s: float | None = None
    count: int | None = None
    events_per_message: int = 100
    metrics_interval_s: float = 10.0
    load_wave_amplitude: float = 0.3  # traffic swings +-30 % ...
    load_wave_period_s: float = 600.0  # ... over this period, so metrics have a load to follow
    scenarios: tuple[ScenarioSpec, ...] = ()
    run_id: str | None = None  # prefix of event/action/order/session ids; default: hash of seed and start

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be > 0 events/s")
        if self.users < 1 + sum(1 for s in self.scenarios if s.name in ("buy_refund_abuse", "identical_burst")):
            raise ValueError("users must leave at least one normal user beside the scenario users")
        if self.services < 1 or self.replicas < 1 or self.hosts < 1 or not 1 <= self.providers <= 4:
            raise ValueError("services, replicas and hosts must be >= 1, providers 1..4")
        if self.events_per_message < 1:
            raise ValueError("events_per_message must be >= 1")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("duration_s must be > 0")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        if not 0 <= self.load_wave_amplitude < 1:
            raise ValueError("load_wave_amplitude must be in [0, 1)")

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: object) -> "SimulationConfig":
        """Defaults from ``Settings.simulate``; ``overrides`` that are not None win."""
        s = (settings or Settings()).simulate
        base = cls(seed=s.seed, rate=s.rate, users=s.users, events_per_message=s.events_per_message)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def id_prefix(self) -> str:
        """``run_id``, or 8 hex digits derived from seed and start (distinct runs do not share ids)."""
        if self.run_id:
            return self.run_id
        return hashlib.blake2b(f"{self.seed}:{self.start_ms}".encode(), digest_size=4).hexdigest()

    @property
    def expected_length_s(self) -> float:
        """How long the run is expected to cover in simulated time (for scenario defaults)."""
        lengths = [x for x in (self.duration_s, self.count / self.rate if self.count else None) if x]
        return min(lengths) if lengths else 600.0
