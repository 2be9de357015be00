"""Request limits, checked before a body is read (a pure ASGI middleware).

- Any request under /api/v1 with a NUL character in its path is 404 (nothing is named so),
  in its query string 422: PostgreSQL refuses NULs in text, so they stop here, not as a 500.

- ``POST /api/v1/uploads``: the bearer token is checked first (an unauthenticated upload is
  answered 401 without reading its body), and a Content-Length over the upload limit is 413.
- Any other body under /api/v1: at most ``HISCI_MAX_REQUEST_MB`` (default 2), counted as it
  arrives (a missing or false Content-Length does not help), else 413.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from ..jobs import JobService
from .auth import token_cache
from .errors import error_body

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
MULTIPART_SLACK = 1 << 20


async def _answer(send: Send, status: int, code: str, message: str, headers: list | None = None) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RequestLimits:
    """Wraps the app; ``prefix`` is the API prefix (``/api/v1``)."""

    def __init__(self, app: Any, service: JobService, prefix: str) -> None:
        self.app, self.service, self.prefix = app, service, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefix):
            return await self.app(scope, receive, send)
        if "\x00" in path:  # no job, file or plugin is named so
            return await _answer(send, 404, "not_found", "nothing here: a path with a NUL character (%00)")
        query = scope.get("query_string") or b""
        if b"\x00" in query or b"%00" in query:
            return await _answer(send, 422, "malformed_request", "a NUL character (%00) in the query string; "
                                 "ids, cursors and filters never hold one")
        if scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        settings = self.service.settings
        length = _header(scope, b"content-length")
        declared = int(length) if length and length.isdigit() else None
        if path.rstrip("/") == f"{self.prefix}/uploads":
            auth = _header(scope, b"authorization") or ""
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            if await token_cache(scope["app"]).user(self.service, token) is None:
                return await _answer(send, 401, "unauthorized", "missing or invalid bearer token",
                                     [(b"www-authenticate", b"Bearer")])
            limit = int(settings.upload_limit_mb * 2**20) + MULTIPART_SLACK
            if declared is not None and declared > limit:
                return await _answer(send, 413, "too_large", f"upload larger than the limit of "
                                     f"{settings.upload_limit_mb:g} MB (HISCI_UPLOAD_LIMIT_MB)")
            return await self.app(scope, receive, send)
        limit = int(settings.max_request_mb * 2**20)
        too_large = f"request body larger than {settings.max_request_mb:g} MB (HISCI_MAX_REQUEST_MB)"
        if declared is not None and declared > limit:
            return await _answer(send, 413, "too_large", too_large)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            size += len(message.get("body", b""))
            if size > limit:
                return await _answer(send, 413, "too_large", too_large)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
