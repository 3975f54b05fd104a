"""``/healthz``, ``/readyz`` and ``/metrics`` of the API (the same answers as :mod:`fleetlens.observe.server`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from fleetlens.observe import metrics as prom
from fleetlens.observe.health import Readiness

ops_router = APIRouter(tags=["operations"])


@ops_router.get("/healthz", summary="Liveness: the process answers (public)")
def healthz() -> dict[str, Any]:
    """``{"status": "ok"}`` while the API serves requests."""
    return {"status": "ok"}


@ops_router.get("/readyz", summary="Readiness: store (and MQ and consumer lag where this process ingests) OK (public)",
                responses={503: {"description": "A check failed; the body says which"}})
def readyz(request: Request) -> JSONResponse:
    """``{"ready": bool, "checks": {name: {"ok", "detail"}}}``; 503 when not ready."""
    readiness: Readiness = request.app.state.readiness
    ready, checks = readiness.evaluate()
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@ops_router.get("/metrics", summary="Prometheus metrics of this process (text format)",
                response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics() -> Response:
    """Every ``fleetlens_*`` metric (and the process' own); needs a token unless auth.metrics_public."""
    return Response(prom.exposition(), media_type=CONTENT_TYPE_LATEST)
