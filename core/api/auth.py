"""Bearer-token users: the ``current_user`` dependency."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ..jobs import JobService, User

bearer = HTTPBearer(auto_error=False, description="A token from `hicli user add NAME`")


# Dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in the thread pool,
# and those hops cost more CPU than the status page itself. Only a token the cache has not
# seen goes to the database, in a thread.


async def get_service(request: Request) -> JobService:
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

    async def user(self, service: JobService, token: str | None) -> User | None:
        """The token's user (None for no or a wrong token): from the cache, else from the
        database in a thread, off the event loop."""
        if not token:
            return None
        return self.cached(token) or await run_in_threadpool(self.check, service, token)

    def cached(self, token: str) -> User | None:
        """The user of a token checked less than ``ttl`` seconds ago (no database)."""
        hit = self._users.get(hashlib.sha256(token.encode()).hexdigest())
        return hit[1] if hit is not None and time.monotonic() - hit[0] < self.ttl else None

    def check(self, service: JobService, token: str) -> User | None:
        """Authenticate against the database and remember the answer."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        user = service.users.authenticate(token)
        with self._lock:
            if user is None:
                self._users.pop(key, None)
            else:
                if len(self._users) >= self.size:
                    self._users.clear()
                self._users[key] = (now, user)
        return user


def token_cache(app: Any) -> TokenCache:
    """The API app's one token cache (``create_app`` makes it)."""
    return app.state.token_cache


async def current_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                       service: JobService = Depends(get_service)) -> User:
    """The bearer token's user. GET requests may use the web app's HttpOnly login cookie
    instead (file links in the browser); state-changing requests need the header (no CSRF)."""
    return await request_user(request, service, credentials.credentials if credentials else None)


async def request_user(request: Request, service: JobService, token: str | None = None) -> User:
    """What ``current_user`` does, callable without FastAPI's dependency solving (the job
    status and list pages, which browsers poll, call it directly: solving three dependencies
    cost more CPU than the page). ``token`` defaults to the request's bearer token."""
    if token is None:
        scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    if token is None and request.method == "GET":
        token = request.cookies.get(COOKIE)
    user = await token_cache(request.app).user(service, token)
    if user is None:
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    if user.worker and not request.url.path.rstrip("/").endswith("/workers/register"):
        raise HTTPException(403, "a worker token may only register workers (POST /api/v1/workers/register)")
    return user
