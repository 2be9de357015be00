"""A small HTTP client for the hisci API (hicli talks to the API, never to Redis)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from hisci.errors import HisciError
from hisci.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8321"


class ServiceError(HisciError):
    exit_code = 4
    code = "service"


class ApiError(HisciError):
    """The API refused the request; carries its problems."""

    code = "api"

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.api_problems = error.get("problems", [])
        message = error.get("message") or f"HTTP {status}"
        lines = [message] + [f"  - {p.get('pointer') or '/'}: {p.get('message')}" for p in self.api_problems
                             if p.get("message") and p.get("message") not in message]
        super().__init__("\n".join(lines))
        self.exit_code = 1 if status in (404, 413, 422) else 4


class Client:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.url = (url or os.environ.get("HISCI_URL") or DEFAULT_URL).rstrip("/")
        self.token = token or os.environ.get("HISCI_TOKEN") or _admin_token()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=60)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceError(f"cannot reach the hisci service at {self.url}: {exc}",
                               hint="start it with `hicli serve` or set HISCI_URL") from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"error": {"message": response.text[:200]}}
            raise ApiError(response.status_code, body)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def submit(self, body: dict[str, Any], key: str | None = None, tries: int = 3,
               pause: float = 1.0) -> dict[str, Any]:
        """POST /jobs with an ``Idempotency-Key`` (a new UUID4 unless given); an unreachable
        service or a 503 is retried with the same key, so the job is created at most once."""
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        for attempt in range(1, tries + 1):
            try:
                return self.json("POST", "/jobs", json=body, headers=headers)
            except (ServiceError, ApiError) as exc:
                if attempt == tries or (isinstance(exc, ApiError) and exc.status != 503):
                    raise
                time.sleep(pause * attempt)
        raise AssertionError("unreachable")

    def upload(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise HisciError(f"input file not found: {path}", file=str(path))
        with open(path, "rb") as fh:
            return self.json("POST", "/uploads", files={"file": (path.name, fh)})


def _admin_token() -> str | None:
    """The token `hicli serve` wrote for this data dir, when readable."""
    path = Settings.from_env().data_dir / "admin.token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
