"""Access control of the API on a real uvicorn server: tokens, roles, sessions, limits, headers.

Routes are enumerated from the app itself, so an endpoint added later is covered without a change here.
"""

from __future__ import annotations

import os
import re
import time

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from fleetlens.api.app import create_app
from fleetlens.api.auth import SESSION_COOKIE, TokenStore, split_token
from fleetlens.api.guard import is_public
from fleetlens.api.server import serve_in_thread
from fleetlens.logsetup import redact
from fleetlens.settings import Settings
from fleetlens.store.client import EmbeddedStore
from fleetlens.store.migrations import ensure_schema


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An empty embedded store with the schema (the endpoints answer, with nothing found)."""
    store = EmbeddedStore(tmp_path_factory.mktemp("auth-store") / "chdb", "fleetlens", query_timeout_s=30)
    ensure_schema(store)
    yield store
    store.close()


class Served:
    """A running app, its settings and token store, and tokens of both roles."""

    def __init__(self, store, tmp_path, **auth):
        self.settings = Settings(data_dir=tmp_path, auth={"failed_auth_per_min": 1000, **auth})
        self.tokens = TokenStore(self.settings.tokens_path)
        self.admin = self.tokens.create("admin", "test admin")
        self.read = self.tokens.create("read", "test reader")
        self.app = create_app(store, self.settings)
        self.handle = serve_in_thread(self.app, "127.0.0.1", 0)
        self.url = self.handle.url

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)


@pytest.fixture
def served(store, tmp_path):
    s = Served(store, tmp_path, rate_limit_per_s=0)
    yield s
    s.handle.stop()


def _flatten(routes):
    """(path, methods) of every route, included routers and mounts of an app's router."""
    for route in routes:
        if hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
            for ctx in route.effective_route_contexts():
                yield getattr(ctx, "path_format", None) or ctx.path, set(ctx.methods or {"GET"})
        elif getattr(route, "routes", None) is not None and not hasattr(route, "methods"):  # Mount
            yield route.path.rstrip("/") + "/x", {"GET"}
        elif getattr(route, "path", None):
            yield route.path, set(getattr(route, "methods", None) or {"GET"})


def every_route(app) -> list[tuple[str, str]]:
    """(method, concrete path) of every route of ``app`` and every operation of its OpenAPI spec."""
    found = {(m, p) for p, methods in _flatten(app.routes) for m in methods if m != "HEAD"}
    for path, ops in app.openapi()["paths"].items():
        found |= {(m.upper(), path) for m in ops}
    return sorted((m, re.sub(r"\{[^}]+\}", "x", p)) for m, p in found)


def test_every_route_without_a_token_answers_401(served):
    routes = every_route(served.app)
    paths = {p for _, p in routes}
    assert {"/events", "/trace/x", "/admin/tokens", "/admin/tokens/x", "/metrics", "/docs", "/openapi.json"} <= paths
    checked = 0
    with served.client() as anonymous, served.client("flt_0123456789abcdef_wrong") as forged:
        for method, path in routes + [("GET", "/no/such/path")]:
            if is_public(path, served.settings):
                continue
            for client in (anonymous, forged):
                response = client.request(method, path, json={} if method in ("POST", "DELETE") else None)
                assert response.status_code == 401, (method, path, response.status_code, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 15


def test_public_paths_need_no_token(served):
    with served.client() as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["store"]["ok"], ready.text
        assert anonymous.post("/auth/logout").status_code == 204
        assert anonymous.post("/auth/login", json={"token": "nope"}).status_code == 401


def test_a_read_token_gets_403_on_every_admin_endpoint(served):
    admin_routes = [(m, p) for m, p in every_route(served.app) if p.startswith("/admin")]
    assert ("GET", "/admin/tokens") in admin_routes and ("DELETE", "/admin/tokens/x") in admin_routes
    with served.client(served.read) as reader, served.client(served.admin) as admin:
        for method, path in admin_routes:
            response = reader.request(method, path, json={"role": "read", "name": "x"} if method == "POST" else None)
            assert response.status_code == 403, (method, path, response.text)
        assert reader.get("/events").status_code == 200  # reading is what a read token is for
        assert reader.get("/admin/anything-added-later").status_code == 403  # the guard, not only the dependency
        listing = admin.get("/admin/tokens").json()["tokens"]
        assert {t["name"] for t in listing} >= {"test admin", "test reader"}
        assert all("hash" not in t and "salt" not in t for t in listing)
        created = admin.post("/admin/tokens", json={"role": "read", "name": "grafana"})
        assert created.status_code == 201 and split_token(created.json()["token"])
        assert admin.post("/admin/tokens", json={"role": "root", "name": "x"}).status_code == 400


def test_revoked_tokens_and_their_sessions_get_401(served):
    with served.client(served.read) as reader, served.client(served.admin) as admin, served.client() as browser:
        assert reader.get("/auth/me").json() == {"role": "read", "name": "test reader",
                                                 "token_id": split_token(served.read)[0], "via": "bearer"}
        assert browser.post("/auth/login", json={"token": served.read}).status_code == 204
        assert browser.get("/auth/me").status_code == 200
        # revoked by another process (the CLI) through the file
        TokenStore(served.settings.tokens_path).revoke(split_token(served.read)[0])
        assert reader.get("/events").status_code == 401
        assert browser.get("/auth/me").status_code == 401
        # and through the admin endpoint
        other = admin.post("/admin/tokens", json={"role": "read", "name": "temp"}).json()
        with served.client(other["token"]) as temp:
            assert temp.get("/events").status_code == 200
            assert admin.delete(f"/admin/tokens/{other['id']}").status_code == 204
            assert temp.get("/events").status_code == 401
        assert admin.delete(f"/admin/tokens/{other['id']}").status_code == 404


def test_cookie_login_and_logout(served):
    with served.client() as browser:
        bad = browser.post("/auth/login", json={"token": served.admin[:-2] + "xx"})
        assert bad.status_code == 401 and SESSION_COOKIE not in browser.cookies
        response = browser.post("/auth/login", json={"token": served.admin})
        assert response.status_code == 204
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and "Secure" not in cookie
        session = browser.cookies[SESSION_COOKIE]
        assert session and served.admin not in cookie
        assert browser.get("/auth/me").json()["via"] == "session"
        assert browser.get("/events").status_code == 200
        # a state-changing request with the cookie from another site is refused
        evil = browser.post("/admin/tokens", json={"role": "read", "name": "x"}, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403
        same = browser.post("/admin/tokens", json={"role": "read", "name": "x"}, headers={"Origin": served.url})
        assert same.status_code == 201
        out = browser.post("/auth/logout")
        assert out.status_code == 204 and SESSION_COOKIE not in browser.cookies
        assert browser.get("/auth/me").status_code == 401
    with httpx.Client(base_url=served.url, cookies={SESSION_COOKIE: session}) as replay:
        assert replay.get("/auth/me").status_code == 401  # the old cookie is dead on the server, not only in the browser


def test_rate_limit_per_token_answers_429_with_retry_after(store, tmp_path):
    s = Served(store, tmp_path, rate_limit_per_s=2, rate_limit_burst=3)
    try:
        with s.client(s.read) as reader, s.client(s.admin) as admin:
            codes = [reader.get("/events").status_code for _ in range(5)]
            assert codes[:3] == [200, 200, 200] and 429 in codes[3:], codes
            limited = reader.get("/events")
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert admin.get("/events").status_code == 200  # per token
            assert reader.get("/metrics").status_code == 200  # scrapes are not limited
            time.sleep(float(limited.headers["retry-after"]))
            assert reader.get("/events").status_code == 200
    finally:
        s.handle.stop()


def test_repeated_bad_tokens_from_one_address_get_429(store, tmp_path):
    s = Served(store, tmp_path, failed_auth_per_min=3)
    try:
        with s.client("flt_0123456789abcdef_guess") as guesser:
            codes = [guesser.get("/events").status_code for _ in range(5)]
        assert codes[:3] == [401, 401, 401] and codes[-1] == 429, codes
    finally:
        s.handle.stop()


def test_cors_is_closed_by_default_and_open_only_to_configured_origins(served, store, tmp_path):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}
    with served.client(served.read) as reader:
        assert "access-control-allow-origin" not in reader.get("/events", headers={"Origin": "https://evil.example"}).headers
        assert "access-control-allow-origin" not in reader.options("/events", headers=preflight).headers
    s = Served(store, tmp_path / "cors", cors_origins=["https://grafana.example"])
    try:
        with s.client() as anonymous:
            ok = anonymous.options("/events", headers={**preflight, "Origin": "https://grafana.example"})
            assert ok.headers.get("access-control-allow-origin") == "https://grafana.example"
            assert "access-control-allow-origin" not in anonymous.options("/events", headers=preflight).headers
    finally:
        s.handle.stop()


def test_security_headers_on_every_kind_of_answer(served):
    with served.client(served.read) as reader, served.client() as anonymous:
        for response in (reader.get("/events"), anonymous.get("/events"), anonymous.get("/healthz"), reader.get("/metrics")):
            h = response.headers
            assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
            assert h["referrer-policy"] == "no-referrer" and h["cache-control"] == "no-store"
            csp = h["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "default-src 'self'" in csp
            assert "strict-transport-security" not in h  # plain http here


def test_request_bodies_over_the_limit_get_413(store, tmp_path):
    s = Served(store, tmp_path, max_body_bytes=1000)
    try:
        with s.client() as anonymous:
            declared = anonymous.post("/auth/login", content=b"x" * 5000, headers={"content-type": "application/json"})
            assert declared.status_code == 413

            def chunks():
                for _ in range(10):
                    yield b"x" * 500

            streamed = anonymous.post("/auth/login", content=chunks(), headers={"content-type": "application/json"})
            assert streamed.status_code == 413
            assert anonymous.post("/auth/login", json={"token": "short"}).status_code == 401
    finally:
        s.handle.stop()


def test_auth_can_be_turned_off(store, tmp_path):
    s = Served(store, tmp_path, enabled=False)
    try:
        with s.client() as anonymous:
            assert anonymous.get("/events").status_code == 200
            assert anonymous.get("/admin/tokens").status_code == 200
            assert anonymous.get("/auth/me").json()["via"] == "anonymous"
    finally:
        s.handle.stop()


def test_token_file_holds_salted_hashes_only(tmp_path):
    tokens = TokenStore(tmp_path / "tokens.json")
    first, second = tokens.create("read", "a"), tokens.create("read", "b")
    text = (tmp_path / "tokens.json").read_text()
    for token in (first, second):
        assert split_token(token)[1] not in text
    assert oct(os.stat(tmp_path / "tokens.json").st_mode)[-3:] == "600"
    records = [t for t in tokens.list()]
    assert [t.name for t in records] == ["a", "b"] or [t.name for t in records] == ["b", "a"]
    assert tokens.verify(first) == "read" and tokens.verify(first + "x") is None
    assert tokens.verify("flt_zz_x") is None and tokens.verify("") is None and tokens.verify("Bearer x") is None
    with pytest.raises(ValueError):
        tokens.create("owner", "x")  # type: ignore[arg-type]


def test_token_cli_create_list_revoke(tmp_path):
    from typer.testing import CliRunner

    import fleetlens.settings as settings_module
    from fleetlens.cli import app

    import logging

    import structlog

    runner = CliRunner()
    saved, root_handlers = structlog.get_config(), list(logging.getLogger().handlers)
    try:
        created = runner.invoke(app, ["--data-dir", str(tmp_path), "token", "create", "--role", "admin", "--name", "ops"])
        assert created.exit_code == 0, created.output
        token = created.stdout.strip().splitlines()[0]
        assert TokenStore(tmp_path / "tokens.json").verify(token) == "admin"
        listing = runner.invoke(app, ["--data-dir", str(tmp_path), "token", "list", "--json"])
        assert '"name": "ops"' in listing.stdout and split_token(token)[1] not in listing.stdout
        revoked = runner.invoke(app, ["--data-dir", str(tmp_path), "token", "revoke", split_token(token)[0]])
        assert revoked.exit_code == 0 and TokenStore(tmp_path / "tokens.json").verify(token) is None
        again = runner.invoke(app, ["--data-dir", str(tmp_path), "token", "revoke", split_token(token)[0]])
        assert again.exit_code == 1
    finally:  # the CLI's callback configured logging to CliRunner's stream, closed now
        settings_module._active = None
        structlog.configure(**saved)
        logging.getLogger().handlers[:] = root_handlers


def test_secrets_are_redacted_from_log_text():
    line = "login flt_0123456789abcdef_s3cr3t-Value_x from http://default:hunter2@ch:8123/db"
    assert redact(line) == "login flt_0123456789abcdef_*** from http://default:***@ch:8123/db"


def test_websockets_need_a_token_too(store, tmp_path):
    """A WebSocket endpoint added later is behind the same guard (closed before accept without a token)."""
    settings = Settings(data_dir=tmp_path)
    token = TokenStore(settings.tokens_path).create("read", "ws")
    app = create_app(store, settings)

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app.add_api_websocket_route("/live", echo)
    app.add_api_websocket_route("/admin/live", echo)
    client = TestClient(app)
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/live") as ws:
            ws.receive_text()
    with client.websocket_connect("/live", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_text() == "hello"
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/admin/live", headers={"Authorization": f"Bearer {token}"}) as ws:
            ws.receive_text()
