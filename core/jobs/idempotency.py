"""``Idempotency-Key`` on submit: a repeated key (per user) returns the first job.

A key is claimed by creating ``<data dir>/idempotency/<sha256(owner, key)>`` exclusively
(O_EXCL, so two concurrent requests cannot both win, across API processes); the winner
submits and then writes the job id into the claim. Claims live on disk, not in Redis, so a
Redis restart cannot turn a client's retry into a duplicate. Claims are kept (a few bytes
each); a claim whose job was deleted is given up, and the key submits anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HisciError, InputError
from ..storage import write_json

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
#: A claim that stays empty this long belongs to a request that died mid-submit.
STALE_CLAIM_S = 60.0


class IdempotencyConflict(HisciError):
    """The same key is being processed by another request right now (HTTP 409)."""

    code = "conflict"


def check_key(key: str) -> str:
    """The key if it is 1-255 visible ASCII characters, else an error naming the header."""
    if not key or len(key) > MAX_LENGTH or not all(33 <= ord(c) <= 126 for c in key):
        raise InputError(f"header {HEADER} must be 1-{MAX_LENGTH} visible ASCII characters",
                         pointer=f"/headers/{HEADER}", given=key[:80],
                         hint="send a random value per logical submit, e.g. a UUID4, and repeat it on retries")
    return key


def fingerprint(plugin_id: str, request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([plugin_id, request], sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class IdempotencyStore:
    root: Path

    @property
    def folder(self) -> Path:
        return self.root / "idempotency"

    def path(self, owner: str, key: str) -> Path:
        return self.folder / hashlib.sha256(f"{owner}\n{key}".encode()).hexdigest()

    def once(self, owner: str, key: str, print_: str, submit: Callable[[], dict[str, Any]],
             existing: Callable[[str], dict[str, Any] | None], wait_s: float = 10.0) -> tuple[dict[str, Any], bool]:
        """``(record, replayed)``: ``submit()`` the first time, ``existing(job_id)`` after.

        ``print_`` is the request's fingerprint: the same key with another request is refused.
        ``existing`` returns None when the first job no longer exists (deleted).
        """
        check_key(key)
        path = self.path(owner, key)
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                claim = _read(path)
                if claim is None:  # another request is submitting with this key
                    if _age(path) > STALE_CLAIM_S:
                        path.unlink(missing_ok=True)
                        continue
                    if time.monotonic() > deadline:
                        raise IdempotencyConflict(
                            f"a request with this {HEADER} is still being processed", pointer=f"/headers/{HEADER}",
                            given=key[:80], hint="retry in a few seconds with the same key") from None
                    time.sleep(0.05)
                    continue
                if claim.get("request") != print_:
                    raise InputError(f"this {HEADER} was used for a different request (job {claim.get('job')})",
                                     pointer=f"/headers/{HEADER}", given=key[:80],
                                     hint="use a new key for a new submit") from None
                record = existing(claim["job"])
                if record is not None:
                    return record, True
                path.unlink(missing_ok=True)  # the first job was deleted: the key is free again
                continue
            try:
                record = submit()
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            write_json(path, {"job": record["id"], "request": print_, "time": time.time()})
            return record, False


def _read(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
