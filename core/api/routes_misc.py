"""Uploads, health, the current user, registry reload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile

from ..jobs import JobService, User
from ..registry import Registry
from .auth import current_user, get_service
from .errors import responses

router = APIRouter(tags=["service"])


@router.post("/uploads", status_code=201, responses=responses(401, 413, 422))
def upload(file: UploadFile = File(...), service: JobService = Depends(get_service),
           user: User = Depends(current_user)) -> dict[str, Any]:
    """Stream a file to disk while hashing; over the size limit: 413 and no partial file."""
    stored = service.save_upload(user, file.filename or "upload.bin", file.file)
    return {**stored, "link": f"upload:{stored['id']}"}


@router.get("/health")
def health(service: JobService = Depends(get_service)) -> dict[str, Any]:
    return service.health()


@router.get("/me", responses=responses(401))
def me(user: User = Depends(current_user)) -> dict[str, Any]:
    return {"name": user.name, "admin": user.admin}


@router.post("/registry/reload", responses=responses(401, 404, 413))
def reload_registry(request: Request, user: User = Depends(current_user)) -> dict[str, Any]:
    """Discover plugins again (after `pip install` of a plugin), without a restart. Admin only."""
    if not user.admin:
        raise HTTPException(404, "not found")
    service: JobService = request.app.state.service
    service.registry = Registry.discover(service.settings)
    request.app.state.registry = service.registry
    return {"plugins": len(service.registry), "problems": len(service.registry.problems)}
