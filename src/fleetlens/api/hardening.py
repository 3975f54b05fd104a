"""Everything that makes the query app safe to expose, added to it in one call from ``create_app``.

Access control, limits and browser headers (:mod:`fleetlens.api.guard`), the login and token
endpoints (:mod:`fleetlens.api.auth_routes`), ``/healthz``, ``/readyz`` and ``/metrics``
(:mod:`fleetlens.api.ops`), and errors of those endpoints in the API's ``{"error": …}`` shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from fleetlens.api import guard
from fleetlens.api.auth_routes import admin_tokens_router, auth_router
from fleetlens.api.ops import ops_router
from fleetlens.logsetup import get_logger
from fleetlens.observe.health import Readiness, store_check
from fleetlens.settings import Settings

log = get_logger(__name__)


def harden(app: FastAPI, store: Any, settings: Settings) -> None:
    """Protect ``app`` and add the auth, admin-token and operations endpoints; readiness checks the store.

    A process that also ingests adds its MQ and lag checks to ``app.state.readiness``.
    """
    guard.install(app, settings)
    if not settings.auth.enabled:
        log.warning("access control is off (auth.enabled = false): every caller is an admin")
    readiness = Readiness(settings.observe.ready_timeout_s)
    readiness.add("store", store_check(store, settings.observe.ready_timeout_s))
    app.state.readiness = readiness
    app.include_router(ops_router)
    app.include_router(auth_router)
    app.include_router(admin_tokens_router)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
