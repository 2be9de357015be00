"""create_app(settings, registry, service) -> FastAPI; no module-level app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..jobs import JobService, Reaper
from ..registry import Registry
from ..settings import Settings
from . import errors
from .routes_jobs import router as jobs_router
from .routes_misc import router as misc_router
from .routes_plugins import router as plugins_router

API_PREFIX = "/api/v1"
log = logging.getLogger("hisci.api")


def create_app(settings: Settings, registry: Registry, service: JobService | None = None,
               *, with_reaper: bool = True) -> FastAPI:
    """The API under /api/v1 (OpenAPI at /docs). A front end may mount itself on it
    (``hicli serve`` mounts the web app at / with ``dash_app.mount_web``)."""
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
    for router in (plugins_router, jobs_router, misc_router):
        app.include_router(router, prefix=API_PREFIX)
    return app
