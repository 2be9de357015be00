"""Bearer-token users: the ``current_user`` dependency."""

from __future__ import annotations

import hashlib
import threading
import time

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..jobs import JobService, User

bearer = HTTPBearer(auto_error=False, description="A token from `hicli user add NAME`")


def get_service(request: Request) -> JobService:
    return request.app.state.service


COOKIE = "hisci_token"
#: How long one API process trusts a token it has checked (a revoked token stops working
#: within this many seconds; a new user's token works at once, failures are not kept).
TOKEN_CACHE_S = 2.0


class TokenCache:
    """Users of recently checked tokens, keyed by the token's SHA-256, for ``ttl`` seconds:
    a job page polling every second costs one database lookup per ``ttl``, not per request."""

    def __init__(self, ttl: float = TOKEN_CACHE_S, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._users: dict[str, tuple[float, User]] = {}
        self._lock = threading.Lock()

    def user(self, service: JobService, token: str | None) -> User | None:
        if not token:
            return None
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        hit = self._users.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        user = service.users.authenticate(token)
        with self._lock:
            if user is None:
                self._users.pop(key, None)
            else:
                if len(self._users) >= self.size:
                    self._users.clear()
                self._users[key] = (now, user)
        return user


def current_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                 service: JobService = Depends(get_service)) -> User:
    """The bearer token's user. GET requests may use the web app's HttpOnly login cookie
    instead (file links in the browser); state-changing requests need the header (no CSRF)."""
    token = credentials.credentials if credentials else None
    if token is None and request.method == "GET":
        token = request.cookies.get(COOKIE)
    cache = getattr(request.app.state, "token_cache", None)
    user = cache.user(service, token) if cache is not None else service.users.authenticate(token)
    if user is None:
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    if user.worker and not request.url.path.rstrip("/").endswith("/workers/register"):
        raise HTTPException(403, "a worker token may only register workers (POST /api/v1/workers/register)")
    return user
