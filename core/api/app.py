"""create_app(settings, registry, service) -> FastAPI; no module-level app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from .. import __version__
from ..jobs import JobService, Reaper
from ..registry import Registry
from ..settings import Settings
from . import errors, links
from .auth import TokenCache
from .limits import RequestLimits
from .routes_jobs import router as jobs_router
from .routes_misc import router as misc_router
from .routes_plugins import router as plugins_router
from .routes_workers import router as workers_router

API_PREFIX = "/api/v1"
#: Threads for the polled pages' index reads. A few, not anyio's 40: with 50 clients polling,
#: 40 threads fighting for the GIL cost more CPU than the reads (measured: 1.9 -> 1.3 ms per
#: status request at 50 concurrent clients).
READ_THREADS = 4
ROUTERS = (plugins_router, jobs_router, misc_router, workers_router)
log = logging.getLogger("hisci.api")


def create_app(settings: Settings, registry: Registry, service: JobService | None = None,
               *, with_reaper: bool = True) -> FastAPI:
    """The API under /api/v1 (OpenAPI at /docs). A front end may mount itself on it
    (``hicli serve`` mounts the web app at / with ``dash_app.mount_web``)."""
    service = service or JobService(settings, registry)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        reaper = Reaper(settings, service.redis, service.book).start() if with_reaper and service.redis else None
        if reaper:
            reaper.resume_interrupted()  # jobs the last shutdown interrupted, when retries allow
            reaper.sweep()  # reconcile records with Redis at start
        yield
        if reaper:
            reaper.stop()
        app.state.read_pool.shutdown(wait=False)

    app = FastAPI(title="hisci", version=__version__, lifespan=lifespan,
                  description="Plugins, parameter schemas, uploads and jobs of a hisci service.")
    app.state.service = service
    app.state.token_cache = TokenCache()
    app.state.read_pool = ThreadPoolExecutor(READ_THREADS, "hisci-index-read")
    app.state.registry = registry
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    _api_fallback(app)
    links.install(app)
    app.add_middleware(RequestLimits, service=service, prefix=API_PREFIX)
    return app


def _api_fallback(app: FastAPI) -> None:
    """Unknown paths and wrong methods under /api/v1 answer JSON 404/405 in the error shape
    (they would otherwise reach the web app mounted at /)."""
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    api_routes = [(compile_path(API_PREFIX + r.path)[0], r.methods) for router in ROUTERS for r in router.routes
                  if isinstance(r, APIRoute)]

    @app.api_route(API_PREFIX + "/{rest:path}", methods=methods, include_in_schema=False)
    def not_here(request: Request, rest: str) -> JSONResponse:
        path = request.url.path
        allowed = sorted({m for regex, ms in api_routes if regex.match(path) for m in ms})
        if allowed:
            return JSONResponse(errors.error_body("method_not_allowed", f"{request.method} is not allowed on "
                                                  f"{path}; use {', '.join(allowed)}"),
                                status_code=405, headers={"Allow": ", ".join(allowed)})
        return JSONResponse(errors.error_body("not_found", f"no API endpoint {path}; see /docs"), status_code=404)

