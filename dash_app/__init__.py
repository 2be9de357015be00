"""The hisci web app (Dash): catalogue, plugin forms, job pages, plugin preview/debug.

    from dash_app import create_dash_app
    app = create_dash_app(settings, registry, service)   # a dash.Dash; app.server is Flask
"""

from .app import create_dash_app
from .mount import mount_web

__all__ = ["create_dash_app", "mount_web"]
