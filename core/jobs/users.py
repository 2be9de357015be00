"""Users with bearer tokens, in the job index's database; only a token's SHA-256 is stored.

An existing ``<data dir>/users.json`` (name -> {id, token_sha256, admin}) is moved into the
database the first time the store is opened (and renamed ``users.json.migrated``); an entry
without an id gets ``name:<name>``, which matches the records made before ids.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..errors import HisciError
from ..storage import read_json
from .index import open_index, users, write_conn

USER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
LEGACY_FILE = "users.json"


@dataclass(frozen=True)
class User:
    """An authenticated user. ``id`` is fixed at creation: jobs and uploads belong to the id,
    so a user removed and re-added under the same name does not inherit the old one's work."""

    name: str
    admin: bool = False
    id: str = ""
    #: a worker token: may register workers (and receives Redis credentials), nothing else
    worker: bool = False


def owns(user: User, record: dict) -> bool:
    """True when the job ``record`` belongs to ``user`` (by id; records from before ids by name)."""
    if record.get("owner_id"):
        return bool(user.id) and hmac.compare_digest(str(record["owner_id"]), user.id)
    return record.get("owner") == user.name


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    """add / authenticate / list / revoke, backed by the ``users`` table."""

    def __init__(self, engine: Engine, legacy: Path | None = None) -> None:
        self.engine = engine
        if legacy is not None and legacy.exists():
            self._migrate(legacy)

    @classmethod
    def open(cls, data_dir: Path, database_url: str | None = None) -> UserStore:
        """The users of this data dir (``HISCI_DATABASE_URL`` or its SQLite index)."""
        return cls(open_index(Path(data_dir), database_url), Path(data_dir) / LEGACY_FILE)

    def _migrate(self, legacy: Path) -> None:
        entries = read_json(legacy)
        with write_conn(self.engine) as conn, conn.begin():
            known = set(conn.execute(sa.select(users.c.name)).scalars())
            rows = [{"name": name, "id": entry.get("id") or f"name:{name}", "token_sha256": entry["token_sha256"],
                     "admin": bool(entry.get("admin")), "created": time.time()}
                    for name, entry in entries.items() if name not in known]
            if rows:
                conn.execute(users.insert(), rows)
        legacy.replace(legacy.with_name(LEGACY_FILE + ".migrated"))

    def add(self, name: str, admin: bool = False, replace: bool = False, worker: bool = False) -> str:
        """Create a user (or, with replace, give it a new token); returns the token once."""
        if not USER_NAME.match(name):
            raise HisciError(f"invalid user name {name!r}", given=name,
                             hint="use letters, digits, '.', '_' or '-' (at most 64)")
        token = secrets.token_urlsafe(32)
        with write_conn(self.engine) as conn, conn.begin():
            row = conn.execute(sa.select(users.c.name).where(users.c.name == name)).first()
            if row and not replace:
                raise HisciError(f"user '{name}' exists", given=name, hint="revoke it first, or pick another name")
            if row:
                conn.execute(users.update().where(users.c.name == name)
                             .values(token_sha256=_hash(token), admin=admin, worker=worker))
            else:
                conn.execute(users.insert().values(name=name, id=secrets.token_hex(12), token_sha256=_hash(token),
                                                   admin=admin, created=time.time(), worker=worker))
        return token

    def authenticate(self, token: str | None) -> User | None:
        if not token:
            return None
        digest = _hash(token)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.token_sha256 == digest)).first()
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            return None
        return User(row.name, bool(row.admin), row.id, bool(row.worker))

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.name)).all()
        return [User(r.name, bool(r.admin), r.id, bool(r.worker)) for r in rows]

    def revoke(self, name: str) -> None:
        with write_conn(self.engine) as conn, conn.begin():
            if conn.execute(users.delete().where(users.c.name == name)).rowcount == 0:
                allowed = sorted(conn.execute(sa.select(users.c.name)).scalars())
                raise HisciError(f"no user '{name}'", given=name, allowed=allowed)
