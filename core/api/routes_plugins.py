"""GET /plugins, /plugins/{id}, /plugins/{id}/schema, /plugins/{id}/ui; POST validate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query

from ..jobs import JobService, User
from .auth import current_user, get_service
from .errors import responses

router = APIRouter(prefix="/plugins", tags=["plugins"], responses=responses(401, 404, 413, 422))


@router.get("")
def list_plugins(lang: str = Query("en", pattern="^(en|zh_cn)$"), service: JobService = Depends(get_service),
                 _: User = Depends(current_user)) -> dict[str, Any]:
    return service.registry.as_json(lang)


@router.get("/{plugin_id}")
def plugin_card(plugin_id: str, lang: str = Query("en", pattern="^(en|zh_cn)$"),
                service: JobService = Depends(get_service), _: User = Depends(current_user)) -> dict[str, Any]:
    plugin = service.registry.get(plugin_id)
    return {"plugin": plugin.summary(lang), "meta": plugin.raw["meta.json"], "data": plugin.raw["data.json"],
            "ui": plugin.raw["ui.json"]}


@router.get("/{plugin_id}/schema")
def plugin_schema(plugin_id: str, service: JobService = Depends(get_service),
                  _: User = Depends(current_user)) -> dict[str, Any]:
    return service.registry.get(plugin_id).parameter_schema()


@router.get("/{plugin_id}/ui")
def plugin_ui(plugin_id: str, service: JobService = Depends(get_service),
              _: User = Depends(current_user)) -> dict[str, Any]:
    return service.registry.get(plugin_id).raw["ui.json"]


@router.post("/{plugin_id}/validate")
def validate(plugin_id: str, request: dict[str, Any] = Body(default_factory=dict),
             service: JobService = Depends(get_service), user: User = Depends(current_user)) -> dict[str, Any]:
    """Check a request without running it (its input links too, as a submit would): the params
    with defaults, or 422 with the problems."""
    return {"ok": True, "params": service.validate(plugin_id, request, user)}
