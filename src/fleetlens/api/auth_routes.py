"""Login, logout and who-am-I for the dashboard; the admin endpoints for tokens.

Admin endpoints of other packages use the same protection: ``APIRouter(prefix="/admin/…",
dependencies=[Depends(require_admin)])`` (the guard also refuses read tokens anywhere under ``/admin/``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from fleetlens.api.auth import SESSION_COOKIE, Principal, current_principal, require_admin
from fleetlens.api.guard import AuthState
from fleetlens.observe import metrics as prom


class Login(BaseModel):
    """A token to log in with."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=256, description="An API token (flt_…).")


class NewToken(BaseModel):
    """A token to create."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["read", "admin"] = Field(description="read: queries and dashboards; admin: also rules, restore, tokens.")
    name: str = Field(min_length=1, max_length=100, description="Who or what uses it (shown in listings).")


def _state(request: Request) -> AuthState:
    return request.app.state.auth


auth_router = APIRouter(prefix="/auth", tags=["auth"])


@auth_router.post("/login", status_code=204, summary="Log in with a token: sets the HttpOnly session cookie",
                  responses={401: {"description": "Unknown, malformed or revoked token"},
                             429: {"description": "Too many failed logins from this address"}})
def login(body: Login, request: Request, response: Response) -> Response:
    """Checks the token and answers 204 with a ``fleetlens_session`` cookie (HttpOnly, SameSite=Strict, Path=/)."""
    state = _state(request)
    principal = state.authenticator.from_bearer(body.token)
    if principal is None:
        client = request.client.host if request.client else "unknown"
        wait = state.note_failure(client)
        prom.AUTH_FAILURES.labels("bad_login").inc()
        if wait:
            raise HTTPException(429, "too many failed logins; wait and retry", headers={"Retry-After": str(math.ceil(wait))})
        raise HTTPException(401, "unknown or revoked token")
    session = state.sessions.open(principal.token_id)
    response.status_code = 204
    response.set_cookie(SESSION_COOKIE, session, max_age=int(state.sessions.lifetime_s), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@auth_router.post("/logout", status_code=204, summary="Log out: ends the session and clears the cookie")
def logout(request: Request, response: Response) -> Response:
    """Always 204; the session named by the cookie (if any) ends now."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        _state(request).sessions.close(session)
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response


@auth_router.get("/me", summary="The caller's role and token name (401 when not logged in)")
def me(principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """``{"role": "read"|"admin", "name": …, "token_id": …, "via": "bearer"|"session"|"anonymous"}``."""
    return {"role": principal.role, "name": principal.name, "token_id": principal.token_id, "via": principal.via}


admin_tokens_router = APIRouter(prefix="/admin/tokens", tags=["admin"], dependencies=[Depends(require_admin)])


@admin_tokens_router.get("", summary="Every token (never its secret), revoked ones too")
def list_tokens(request: Request) -> dict[str, Any]:
    """``tokens``: id, name, role, created_at, revoked_at, active."""
    return {"tokens": [t.to_json() for t in _state(request).tokens.list()]}


@admin_tokens_router.post("", status_code=201, summary="Create a token; its secret is in this answer only")
def create_token(body: NewToken, request: Request) -> dict[str, Any]:
    """``token`` (shown once: store it now), ``id``, ``role``, ``name``."""
    tokens = _state(request).tokens
    try:
        token = tokens.create(body.role, body.name)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    info = tokens.get(token.split("_")[1])
    return {"token": token, **(info.to_json() if info else {})}


@admin_tokens_router.delete("/{token_id}", status_code=204, summary="Revoke a token at once (its sessions end too)",
                            responses={404: {"description": "No such active token"}})
def revoke_token(token_id: str, request: Request) -> Response:
    """204 when revoked; 404 when there is no active token with this id."""
    if not _state(request).tokens.revoke(token_id):
        raise HTTPException(404, f"no active token {token_id!r}")
    return Response(status_code=204)
