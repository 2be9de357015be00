"""The HTTP API (FastAPI). Build it with :func:`create_app`."""

from .app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
