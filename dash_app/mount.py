"""Mount the web app on the API's FastAPI app (what ``hicli serve`` serves on one port)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("dash_app.mount")


def mount_web(api: Any, settings: Any, registry: Any, service: Any = None, path: str = "/") -> bool:
    """Mount the Dash app (a WSGI app) at ``path`` of the FastAPI app ``api``, through a2wsgi.

    Returns False (and logs why) when the web app cannot start; the API keeps serving.
    """
    from a2wsgi import WSGIMiddleware

    from .app import create_dash_app

    try:
        dash = create_dash_app(settings, registry, service)
    except Exception:  # noqa: BLE001 - a broken web app must not take the API down
        log.exception("web app failed to start; the API still serves /api/v1")
        return False
    api.mount(path, WSGIMiddleware(dash.server))
    return True
