"""``/admin/scenarios``: list the anomaly scenarios and inject one into the simulator of this process (``fleetlens up``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from fleetlens.api.auth import require_admin
from fleetlens.simulate.scenarios import SCENARIOS, ScenarioSpec
from fleetlens.simulate.generator import format_ts

scenarios_router = APIRouter(prefix="/admin/scenarios", tags=["admin"], dependencies=[Depends(require_admin)])


class Injection(BaseModel):
    """One anomaly to inject."""

    scenario: str = Field(description="Scenario name (GET /admin/scenarios lists them).")
    target: str | None = Field(None, description="Provider, user id, service, operation or host; default: chosen by the simulator.")
    duration_s: float = Field(120.0, gt=0, le=3600, description="How long the anomaly lasts (simulated seconds).")
    lead_s: float = Field(2.0, ge=0, le=600, description="Simulated seconds from now until it starts.")


@scenarios_router.get("", summary="The anomaly scenarios the simulator can inject")
def list_scenarios() -> dict[str, Any]:
    """Name, key, expected rules and description of every scenario."""
    return {"scenarios": [{"name": k.name, "key": k.key, "expected_rules": list(k.expected_rules),
                           "description": k.description} for k in SCENARIOS.values()]}


@scenarios_router.post("", summary="Inject a scenario into the running simulator")
def inject(body: Injection, request: Request) -> dict[str, Any]:
    """Starts the anomaly ``lead_s`` from now; answers with its label (key, window, expected rules)."""
    simulator = getattr(request.app.state, "simulator", None)
    if simulator is None:
        raise HTTPException(409, "no simulator runs in this process (start fleetlens up with the simulator)")
    if body.scenario not in SCENARIOS:
        raise HTTPException(400, f"unknown scenario {body.scenario!r}; known: {', '.join(SCENARIOS)}")
    sim = simulator()
    if sim is None:
        raise HTTPException(409, "the simulator has not started yet")
    try:
        label = sim.inject(ScenarioSpec(body.scenario, body.target, None, body.duration_s), body.lead_s).result(timeout=10)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return {"id": label.id, "scenario": label.kind.name, "key": {label.kind.key: label.key_value},
            "start": format_ts(label.start_ms), "end": format_ts(label.end_ms), "start_ms": label.start_ms,
            "end_ms": label.end_ms, "expected_rules": list(label.kind.expected_rules), "params": label.params}
