"""Which requests a workload sends: one request builder per query family, weighted."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

Request = tuple[str, dict[str, object]]  # (path, query parameters)


@dataclass(frozen=True)
class Context:
    """What the builders draw from: the range to query and ids/values seen in the store."""

    start: str
    end: str
    action_ids: tuple[str, ...]
    services: tuple[str, ...]


def _range(ctx: Context) -> dict[str, object]:
    return {"start": ctx.start, "end": ctx.end}


BUILDERS: dict[str, Callable[[random.Random, Context], Request]] = {
    "trace": lambda r, c: (f"/trace/{r.choice(c.action_ids)}", {}),
    "events": lambda r, c: ("/events", {**_range(c), "level": r.choice(["error", "warn,error", "info"]),
                                        "service": r.choice(c.services), "limit": 50}),
    "search": lambda r, c: ("/events", {**_range(c), "text": r.choice(["timeout", "declined", "GET", "payment failed"]),
                                        "limit": 50}),
    "users": lambda r, c: ("/users", {**_range(c), "step": "1m"}),
    "business": lambda r, c: ("/business", {**_range(c), "interval": r.choice(["15m", "1h"])}),
    "perf": lambda r, c: ("/perf/durations", {**_range(c), "interval": "15m", "by": r.choice(["operation", "event_type"])}),
    "resources": lambda r, c: ("/perf/resources", {**_range(c), "interval": "5m"}),
    "anomalies": lambda r, c: ("/anomalies", _range(c)),
    "rejections": lambda r, c: ("/rejections", _range(c)),
}

DEFAULT_MIX = "trace=4,events=2,search=2,users=1,business=1,perf=1,resources=1,anomalies=1,rejections=1"


def parse_mix(text: str) -> dict[str, float]:
    """``family=weight,…`` → weights (families from :data:`BUILDERS`, weights > 0)."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in BUILDERS:
            raise ValueError(f"unknown query family {name!r}; known: {', '.join(BUILDERS)}")
        try:
            mix[name] = float(weight or 1)
        except ValueError:
            raise ValueError(f"weight of {name} is not a number: {weight!r}") from None
        if mix[name] <= 0:
            raise ValueError(f"weight of {name} must be > 0")
    if not mix:
        raise ValueError("the mix names no query family")
    return mix
