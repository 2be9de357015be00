"""create_app(settings, registry, service) -> FastAPI; no module-level app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from .. import __version__
from ..jobs import JobService, Reaper
from ..registry import Registry
from ..settings import Settings
from . import errors
from .routes_jobs import router as jobs_router
from .routes_misc import router as misc_router
from .routes_plugins import router as plugins_router
from .routes_workers import router as workers_router

API_PREFIX = "/api/v1"
log = logging.getLogger("hisci.api")


def create_app(settings: Settings, registry: Registry, service: JobService | None = None,
               *, with_reaper: bool = True, with_web: bool = True) -> FastAPI:
    """The API under /api/v1 (OpenAPI at /docs) and, when dash_app is installed, the web app at /."""
    service = service or JobService(settings, registry)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        reaper = Reaper(settings, service.redis).start() if with_reaper and service.redis else None
        if reaper:
            reaper.sweep()  # reconcile records with Redis at start
        yield
        if reaper:
            reaper.stop()

    app = FastAPI(title="hisci", version=__version__, lifespan=lifespan,
                  description="Plugins, parameter schemas, uploads and jobs of a hisci service.")
    app.state.service = service
    app.state.registry = registry
    errors.install(app)
    for router in (plugins_router, jobs_router, misc_router, workers_router):
        app.include_router(router, prefix=API_PREFIX)
    if with_web:
        _mount_web(app, settings, registry, service)
    return app


def _mount_web(app: FastAPI, settings: Settings, registry: Registry, service: JobService) -> None:
    try:
        from dash_app import create_dash_app
    except ImportError as exc:
        log.warning("web app not mounted (%s); the API still serves /api/v1", exc)
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fine for Dash's plain WSGI app
        from starlette.middleware.wsgi import WSGIMiddleware

    try:
        dash: Any = create_dash_app(settings, registry, service)
    except Exception:  # noqa: BLE001 - a broken web app must not take the API down
        log.exception("web app failed to start; the API still serves /api/v1")
        return
    app.mount("/", WSGIMiddleware(dash.server))
