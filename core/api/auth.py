"""Bearer-token users: the ``current_user`` dependency."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..jobs import JobService, User

bearer = HTTPBearer(auto_error=False, description="A token from `hicli user add NAME`")


def get_service(request: Request) -> JobService:
    return request.app.state.service


COOKIE = "hisci_token"


def current_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                 service: JobService = Depends(get_service)) -> User:
    """The bearer token's user. GET requests may use the web app's HttpOnly login cookie
    instead (file links in the browser); state-changing requests need the header (no CSRF)."""
    token = credentials.credentials if credentials else None
    if token is None and request.method == "GET":
        token = request.cookies.get(COOKIE)
    user = service.users.authenticate(token)
    if user is None:
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    if user.worker and not request.url.path.rstrip("/").endswith("/workers/register"):
        raise HTTPException(403, "a worker token may only register workers (POST /api/v1/workers/register)")
    return user
