"""The API's outer layers: access control for every path, rate limits, body limit, browser headers.

Access control is an ASGI middleware in front of the router, so it covers every route, mount and
unknown path, including ones added later: anything not in the public allow-list (``is_public``)
answers 401 without a valid bearer token or session cookie, and paths under ``/admin/`` answer 403
to a read token even if an endpoint forgot its ``require_admin`` dependency.

Layers, outermost first: security headers → CORS (only when ``auth.cors_origins`` is set) → body
size limit → access control and per-token rate limit → request timing → the app.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable

import anyio
import orjson

from fleetlens.api.auth import ANONYMOUS_ADMIN, SESSION_COOKIE, Authenticator, Principal, Sessions, TokenStore
from fleetlens.observe import metrics as prom
from fleetlens.settings import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths served without a token: probes, the login itself, the dashboard's static shell.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/auth/login", "/auth/logout", "/", "/ui", "/ui/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/ui/assets/",)
#: Authenticated paths the per-token rate limit leaves alone (scrapes, session handling).
UNLIMITED_PATHS = frozenset({"/metrics", "/auth/me"})
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_public(path: str, settings: Settings) -> bool:
    """Whether ``path`` is served without a token."""
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return True
    return path == "/metrics" and settings.auth.metrics_public


class RateLimiter:
    """Token buckets by key: ``per_s`` refill, ``burst`` capacity; bounded memory."""

    def __init__(self, per_s: float, burst: int, max_keys: int = 100_000):
        self.per_s = per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when ``per_s`` is 0."""
        return self.per_s > 0

    def take(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0.0 if allowed, else seconds until one is."""
        if not self.enabled:
            return 0.0
        now = time.monotonic()
        with self._lock:
            level, at = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - at) * self.per_s)
            if level >= 1.0:
                self._set(key, level - 1.0, now)
                return 0.0
            self._set(key, level, now)
            return (1.0 - level) / self.per_s

    def _set(self, key: str, level: float, now: float) -> None:
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            full_after = self.burst / self.per_s
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
            if len(self._buckets) >= self.max_keys:
                self._buckets.pop(next(iter(self._buckets)))
        self._buckets[key] = (level, now)


@dataclass
class AuthState:
    """What the guard and the auth endpoints share (``app.state.auth``)."""

    settings: Settings
    tokens: TokenStore
    sessions: Sessions
    authenticator: Authenticator
    limiter: RateLimiter
    failures: RateLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> "AuthState":
        """Tokens from ``settings.tokens_path``; limits and session lifetime from ``settings.auth``."""
        auth = settings.auth
        tokens = TokenStore(settings.tokens_path)
        sessions = Sessions(auth.session_hours * 3600)
        return cls(settings, tokens, sessions, Authenticator(tokens, sessions),
                   RateLimiter(auth.rate_limit_per_s, auth.rate_limit_burst),
                   RateLimiter(auth.failed_auth_per_min / 60.0, auth.failed_auth_per_min))

    def note_failure(self, client: str) -> float:
        """Count a failed authentication of ``client``; seconds to wait when it failed too often, else 0."""
        return self.failures.take(f"ip:{client}")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes, list]:
    raw = orjson.dumps(body)
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return status, raw, head


async def _answer(send: Send, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class Guard:
    """Authenticates every HTTP request, enforces the allow-list, roles on /admin/, CSRF and rate limits."""

    def __init__(self, app: ASGIApp, state: AuthState):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        settings = self.state.settings
        path = scope["path"]
        public = is_public(path, settings)
        principal: Principal | None
        failed = False
        if not settings.auth.enabled:
            principal = ANONYMOUS_ADMIN
        else:
            principal, failed = await self._authenticate(scope)
        scope.setdefault("state", {})["principal"] = principal
        if scope["type"] == "websocket":
            return await self._websocket(scope, receive, send, principal, public)
        if failed:
            wait = self.state.note_failure(_client(scope))
            if wait and not public:
                prom.AUTH_FAILURES.labels("too_many_failures").inc()
                return await _answer(send, *_json(429, {"error": "too many failed authentications; wait and retry"},
                                                  {"Retry-After": str(math.ceil(wait))}))
        if public:
            return await self.app(scope, receive, send)
        if principal is None:
            prom.AUTH_FAILURES.labels("bad_token" if failed else "no_token").inc()
            return await _answer(send, *_json(401, {"error": "a valid token is required: Authorization: Bearer <token>, "
                                                    "or log in with POST /auth/login"}, {"WWW-Authenticate": "Bearer"}))
        if (path == "/admin" or path.startswith("/admin/")) and not principal.is_admin:
            prom.AUTH_FAILURES.labels("not_admin").inc()
            return await _answer(send, *_json(403, {"error": "this needs an admin token"}))
        if principal.via == "session" and scope["method"] in _UNSAFE and not self._same_origin(scope):
            prom.AUTH_FAILURES.labels("cross_origin").inc()
            return await _answer(send, *_json(403, {"error": "cross-origin request with a session cookie"}))
        if principal.via != "anonymous" and path not in UNLIMITED_PATHS:
            wait = self.state.limiter.take(principal.token_id)
            if wait:
                prom.AUTH_FAILURES.labels("rate_limited").inc()
                return await _answer(send, *_json(429, {"error": "rate limit of this token exceeded "
                                                        f"({settings.auth.rate_limit_per_s:g} requests/s)"},
                                                  {"Retry-After": str(max(1, math.ceil(wait)))}))
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, principal: Principal | None,
                         public: bool) -> None:
        """The same rules for WebSockets: refused (close before accept: HTTP 403) without a valid token."""
        path = scope["path"]
        admin_only = path == "/admin" or path.startswith("/admin/")
        if public or (principal is not None and (principal.is_admin or not admin_only)):
            return await self.app(scope, receive, send)
        prom.AUTH_FAILURES.labels("no_token" if principal is None else "not_admin").inc()
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})

    async def _authenticate(self, scope: Scope) -> tuple[Principal | None, bool]:
        """``(principal, failed)``: failed when a token or session was presented and is not valid."""
        auth = self.state.authenticator
        header = _header(scope, b"authorization")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None, True
            if auth.is_cheap(token):
                principal = auth.from_bearer(token)
            else:  # scrypt: off the event loop
                principal = await anyio.to_thread.run_sync(auth.from_bearer, token)
            return principal, principal is None
        session = _cookie(scope, SESSION_COOKIE)
        if session:
            principal = auth.from_session(session)
            return principal, False  # an expired session is normal, not a guess
        return None, False

    @staticmethod
    def _same_origin(scope: Scope) -> bool:
        origin = _header(scope, b"origin")
        if not origin:  # browsers send Origin on cross-site unsafe requests; SameSite=Strict did the rest
            return True
        host = _header(scope, b"host")
        return origin.split("://", 1)[-1] == host


def _cookie(scope: Scope, name: str) -> str:
    raw = _header(scope, b"cookie")
    if not raw:
        return ""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001 - a malformed cookie header is no session
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel else ""


class BodyLimit:
    """413 for request bodies over ``max_bytes`` (declared by Content-Length or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = _json(413, {"error": f"request body larger than {self.max_bytes} bytes (auth.max_body_bytes)"})
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await _answer(send, *too_large)
        seen = 0
        started = rejected = False

        async def counted() -> dict[str, Any]:
            nonlocal seen, started, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not rejected:
                    # Answer now and tell the app the client left: whatever it answers is dropped.
                    rejected = True
                    if not started:
                        started = True
                        await _answer(send, *too_large)
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: dict[str, Any]) -> None:
            nonlocal started
            if rejected:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, watched)


class SecurityHeaders:
    """Browser hardening headers on every response; ``Cache-Control: no-store`` unless the route set one."""

    def __init__(self, app: ASGIApp, csp: str):
        self.app = app
        self.base = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = self.csp
        https = scope.get("scheme") == "https"

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.base if k not in present]
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", csp))
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                if https:
                    headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class RequestTimer:
    """Latency of each request by route (the query family) into ``fleetlens_api_request_seconds``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def noted(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            route = scope.get("route")
            family = getattr(route, "path", None) or "unmatched"
            prom.QUERY_SECONDS.labels(family, f"{status // 100}xx").observe(time.perf_counter() - started)


def install(app: Any, settings: Settings) -> AuthState:
    """Add the layers to ``app`` (a FastAPI app) and return the shared auth state."""
    from starlette.middleware.cors import CORSMiddleware

    state = AuthState.from_settings(settings)
    app.state.auth = state
    # add_middleware puts each new layer outside the previous ones
    app.add_middleware(RequestTimer)
    app.add_middleware(Guard, state=state)
    app.add_middleware(BodyLimit, max_bytes=settings.auth.max_body_bytes)
    if settings.auth.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.auth.cors_origins, allow_credentials=True,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"],
                           max_age=600)
    app.add_middleware(SecurityHeaders, csp=settings.auth.content_security_policy)
    return state
