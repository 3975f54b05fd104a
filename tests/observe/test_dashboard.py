"""The provisioned Grafana dashboard of fleetlens itself: current, and built only from metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

from fleetlens.observe import dashboard
from fleetlens.observe import metrics  # noqa: F401 - registers every fleetlens metric

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_dashboard_is_current():
    path = ROOT / dashboard.OUTPUT
    assert path.read_text() == dashboard.render(), "run: python -m fleetlens.observe.dashboard"


def test_every_query_uses_metrics_fleetlens_exports():
    exported = {s.name for family in REGISTRY.collect() for s in family.samples} | {
        f.name for f in REGISTRY.collect()}
    model = json.loads(dashboard.render())
    exprs = [t["expr"] for p in model["panels"] for t in p.get("targets", [])]
    names = {n for e in exprs for n in re.findall(r"\b((?:fleetlens|process)_[a-z_]+)\b", e)}
    defined = {f.name for f in REGISTRY.collect()}
    for name in names:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert name in exported or base in defined, f"{name} is not a metric of this process"
    # every fleetlens metric family shows on some panel
    ours = {f.name for f in REGISTRY.collect() if f.name.startswith("fleetlens_") and f.name != "fleetlens_build"}
    used = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in names}
    assert ours <= used, f"not on the dashboard: {sorted(ours - used)}"
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)) and all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in model["panels"])
