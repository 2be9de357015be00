"""Workers join through the API: a worker token receives the Redis address and credentials
and the data dir; an ordinary token gets none of these (403)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from ..jobs import JobService, User
from .auth import current_user, get_service

router = APIRouter(prefix="/workers", tags=["workers"])


class Registration(BaseModel):
    host: str = Field(..., min_length=1, max_length=200, description="the worker's host name")
    cores: int = Field(1, ge=1, le=100_000)
    memory_gb: float = Field(0.0, ge=0)
    gpus: int = Field(0, ge=0, le=1024)
    queues: list[str] = Field(default_factory=lambda: ["cpu"], max_length=4)


@router.post("/register")
def register(body: Registration, service: JobService = Depends(get_service),
             user: User = Depends(current_user)) -> dict[str, Any]:
    """What a worker on another host needs: Redis URL (with its password), data dir, queues."""
    if not user.worker:
        raise HTTPException(403, "only a worker token may register a worker (hicli user add NAME --worker)")
    unknown = [q for q in body.queues if q not in ("cpu", "gpu")]
    if unknown:
        raise HTTPException(422, f"unknown queue(s) {unknown}; use cpu and/or gpu")
    settings = service.settings
    if service.redis is not None:
        import json

        service.redis.set(f"hisci:registered:{body.host}", json.dumps({**body.model_dump(), "by": user.name}), ex=3600)
    return {"redis_url": settings.redis_url, "data_dir": str(settings.data_dir.resolve()),
            "queues": body.queues, "heartbeat_ttl": settings.heartbeat_ttl}
