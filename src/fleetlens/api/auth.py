"""Who may call the API: tokens (salted scrypt hashes on disk), dashboard sessions, roles.

A token reads ``flt_<id>_<secret>``. The id (16 hex digits) is stored in the clear and finds the
record at once; only a salted scrypt hash of the secret is stored, so the tokens file gives nothing
away. A token is shown once, when it is created. Roles: ``read`` (queries, dashboards, alerts) and
``admin`` (everything read may, plus rules, restore/reprocess, scenarios, tokens).

The browser logs in with a token (``POST /auth/login``) and gets an HttpOnly, SameSite=Strict
session cookie; sessions live in the API process (a restart logs everybody out) and die with their
token. The file is re-read when another process (``fleetlens token revoke``) changes it, so a
revoked token stops working at the next request.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import orjson
from fastapi import Depends, HTTPException, Request

ROLES = ("read", "admin")
Role = Literal["read", "admin"]
PREFIX = "flt"
SESSION_COOKIE = "fleetlens_session"
# scrypt cost: ~16 MiB and a few tens of ms per check; verified tokens are cached in memory, so
# this is paid once per token and process (and by whoever guesses secrets of an existing id).
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_CACHE_MAX = 4096


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, maxmem=64 * 2**20, **_SCRYPT)


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def split_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, else None."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 16 or not parts[2]:
        return None
    if any(c not in "0123456789abcdef" for c in parts[1]) or len(parts[2]) > 128:
        return None
    return parts[1], parts[2]


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token, without its secret."""

    id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        """The public fields, for listings."""
        return {"id": self.id, "name": self.name, "role": self.role, "created_at": self.created_at,
                "revoked_at": self.revoked_at, "active": self.active}


class TokenStore:
    """The API tokens in one JSON file of salted hashes; safe to share between processes.

    Writers take an exclusive ``flock`` on ``<file>.lock`` and replace the file atomically (mode
    0600). Readers re-read it when its size, mtime or inode changed.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._records: dict[str, dict[str, Any]] = {}
        # keyed digest of a verified token → token id (the secret never sits in memory as text)
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, str] = {}

    # -- reading ---------------------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._records = None, {}
            return self._records
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            data = orjson.loads(self.path.read_bytes() or b"{}")
            self._records = dict(data.get("tokens", {}))
            self._stamp = stamp
        return self._records

    def _info(self, token_id: str, record: dict[str, Any]) -> TokenInfo:
        return TokenInfo(token_id, record["name"], record["role"], record["created_at"], record.get("revoked_at"))

    def list(self) -> list[TokenInfo]:
        """Every token (revoked ones too), oldest first."""
        with self._lock:
            records = self._load()
            return sorted((self._info(i, r) for i, r in records.items()), key=lambda t: (t.created_at, t.id))

    def get(self, token_id: str) -> TokenInfo | None:
        """The token with this id, or None."""
        with self._lock:
            record = self._load().get(token_id)
            return self._info(token_id, record) if record else None

    def identify(self, token: str) -> TokenInfo | None:
        """The active token ``token`` is, or None (malformed, unknown, wrong secret, revoked)."""
        parts = split_token(token)
        if parts is None:
            return None
        token_id, secret = parts
        digest = self._digest(token)
        with self._lock:
            record = self._load().get(token_id)
            if record is None or record.get("revoked_at"):
                return None
            if self._verified.get(digest) == token_id:
                return self._info(token_id, record)
            salt, expected = base64.b64decode(record["salt"]), base64.b64decode(record["hash"])
        if not hmac.compare_digest(_hash(secret, salt), expected):
            return None
        with self._lock:
            if len(self._verified) >= _CACHE_MAX:
                self._verified.clear()
            self._verified[digest] = token_id
        return self.get(token_id)

    def _digest(self, token: str) -> bytes:
        return hmac.new(self._cache_key, token.strip().encode(), hashlib.sha256).digest()

    def is_cheap(self, token: str) -> bool:
        """Whether :meth:`identify` answers without scrypt: malformed, unknown or revoked id, or verified before."""
        parts = split_token(token)
        if parts is None:
            return True
        with self._lock:
            record = self._load().get(parts[0])
            return record is None or bool(record.get("revoked_at")) or self._digest(token) in self._verified

    def verify(self, token: str) -> Role | None:
        """The role of an active token, else None."""
        info = self.identify(token)
        return info.role if info else None

    # -- writing ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[dict[str, dict[str, Any]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock_file, self._lock:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                self._stamp = None  # re-read under the lock: another process may have written
                records = dict(self._load())
                yield records
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(orjson.dumps({"version": 1, "tokens": records}, option=orjson.OPT_INDENT_2))
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
                self._stamp = None
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def create(self, role: Role, name: str) -> str:
        """A new token with ``role``; returns the plain token (the only time it exists as text)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        name = name.strip()
        if not name or len(name) > 100 or not name.isprintable():
            raise ValueError("name must be 1 to 100 printable characters")
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self._writing() as records:
            token_id = secrets.token_hex(8)
            while token_id in records:
                token_id = secrets.token_hex(8)
            records[token_id] = {"name": name, "role": role, "created_at": _now_iso(), "revoked_at": None,
                                 "kdf": "scrypt", "salt": _b64(salt), "hash": _b64(_hash(secret, salt))}
        return f"{PREFIX}_{token_id}_{secret}"

    def revoke(self, token_id: str) -> bool:
        """Revoke a token (kept in the listing, marked revoked); False when there is no such active token."""
        with self._writing() as records:
            record = records.get(token_id)
            if record is None or record.get("revoked_at"):
                return False
            records[token_id] = {**record, "revoked_at": _now_iso()}
        return True

    def has_active(self, role: Role | None = None) -> bool:
        """Whether some active token (of ``role``) exists."""
        return any(t.active and (role is None or t.role == role) for t in self.list())


# -- who is calling --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the token behind the request, and how it came (bearer or session)."""

    token_id: str
    name: str
    role: Role
    via: Literal["bearer", "session", "anonymous"]

    @property
    def is_admin(self) -> bool:
        """May use the admin endpoints."""
        return self.role == "admin"


#: The caller when ``auth.enabled`` is false: every role, nothing to rate-limit per token.
ANONYMOUS_ADMIN = Principal("anonymous", "anonymous (auth disabled)", "admin", "anonymous")


class Sessions:
    """Dashboard logins: random session ids → token id, with an expiry; in memory, bounded."""

    def __init__(self, lifetime_s: float, max_sessions: int = 10_000):
        self.lifetime_s = lifetime_s
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[str, float]] = {}

    def open(self, token_id: str) -> str:
        """A new session for ``token_id``; returns its id (the cookie value)."""
        now = time.monotonic()
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}
                while len(self._sessions) >= self.max_sessions:  # still full: drop the oldest
                    self._sessions.pop(next(iter(self._sessions)))
            session_id = secrets.token_urlsafe(32)
            self._sessions[session_id] = (token_id, now + self.lifetime_s)
        return session_id

    def token_of(self, session_id: str) -> str | None:
        """The token id of a live session, else None."""
        with self._lock:
            entry = self._sessions.get(session_id)
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                self._sessions.pop(session_id, None)
                return None
            return entry[0]

    def close(self, session_id: str) -> None:
        """End a session (logout)."""
        with self._lock:
            self._sessions.pop(session_id, None)


class Authenticator:
    """Turns a request's bearer token or session cookie into a :class:`Principal`."""

    def __init__(self, tokens: TokenStore, sessions: Sessions):
        self.tokens = tokens
        self.sessions = sessions

    def from_bearer(self, token: str) -> Principal | None:
        """The caller behind a bearer token."""
        info = self.tokens.identify(token)
        return Principal(info.id, info.name, info.role, "bearer") if info else None

    def from_session(self, session_id: str) -> Principal | None:
        """The caller behind a session cookie (its token must still be active)."""
        token_id = self.sessions.token_of(session_id)
        info = self.tokens.get(token_id) if token_id else None
        if info is None or not info.active:
            if token_id:
                self.sessions.close(session_id)
            return None
        return Principal(info.id, info.name, info.role, "session")

    def is_cheap(self, token: str) -> bool:
        """Whether checking ``token`` needs no scrypt run (see :meth:`TokenStore.is_cheap`)."""
        return self.tokens.is_cheap(token)


# -- FastAPI dependencies --------------------------------------------------------------------------


def current_principal(request: Request) -> Principal:
    """The caller, as the guard middleware authenticated it (401 when there is none)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise HTTPException(status_code=401, detail="a token is required", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_admin(principal: Principal = Depends(current_principal)) -> Principal:
    """Dependency of every admin endpoint: 403 for a read token."""
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail="this needs an admin token")
    return principal
