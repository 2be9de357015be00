"""Bearer-token users: the ``current_user`` dependency."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..jobs import JobService, User

bearer = HTTPBearer(auto_error=False, description="A token from `hicli user add NAME`")


def get_service(request: Request) -> JobService:
    return request.app.state.service


def current_user(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                 service: JobService = Depends(get_service)) -> User:
    user = service.users.authenticate(credentials.credentials if credentials else None)
    if user is None:
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    return user
