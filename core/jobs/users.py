"""Users with bearer tokens; only a token's SHA-256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import HisciError
from ..storage import read_json, write_json

USER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class User:
    """An authenticated user. ``id`` is fixed at creation: jobs and uploads belong to the id,
    so a user removed and re-added under the same name does not inherit the old one's work."""

    name: str
    admin: bool = False
    id: str = ""


def owns(user: User, record: dict) -> bool:
    """True when the job ``record`` belongs to ``user`` (by id; records from before ids by name)."""
    if record.get("owner_id"):
        return bool(user.id) and hmac.compare_digest(str(record["owner_id"]), user.id)
    return record.get("owner") == user.name


def _user(name: str, entry: dict) -> User:
    return User(name, bool(entry.get("admin")), entry.get("id") or f"name:{name}")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class UserStore:
    """``<data dir>/users.json``: name -> {id, token_sha256, admin}."""

    path: Path

    def _load(self) -> dict[str, dict]:
        return read_json(self.path) if self.path.exists() else {}

    def _save(self, users: dict[str, dict]) -> None:
        write_json(self.path, users)
        os.chmod(self.path, 0o600)

    def add(self, name: str, admin: bool = False, replace: bool = False) -> str:
        """Create a user (or, with replace, give it a new token); returns the token once."""
        if not USER_NAME.match(name):
            raise HisciError(f"invalid user name {name!r}", given=name,
                             hint="use letters, digits, '.', '_' or '-' (at most 64)")
        users = self._load()
        if name in users and not replace:
            raise HisciError(f"user '{name}' exists", given=name, hint="revoke it first, or pick another name")
        token = secrets.token_urlsafe(32)
        kept = users.get(name, {}).get("id") if replace else None  # a new token keeps the id
        users[name] = {"id": kept or secrets.token_hex(12), "token_sha256": _hash(token), "admin": admin}
        self._save(users)
        return token

    def authenticate(self, token: str | None) -> User | None:
        if not token:
            return None
        digest = _hash(token)
        for name, entry in self._load().items():
            if hmac.compare_digest(entry["token_sha256"], digest):
                return _user(name, entry)
        return None

    def list(self) -> list[User]:
        return [_user(n, e) for n, e in sorted(self._load().items())]

    def revoke(self, name: str) -> None:
        users = self._load()
        if name not in users:
            raise HisciError(f"no user '{name}'", given=name, allowed=sorted(users))
        del users[name]
        self._save(users)
