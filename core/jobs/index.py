"""The job index: a real database (SQLite in the data dir, or PostgreSQL) via SQLAlchemy 2.

It holds what lists, filters and the reaper need (one row per job, with the job.json
document in ``doc``) and the users. The schema is made by the Alembic migrations shipped
in ``hisci.jobs.migrations``; :func:`open_index` runs them on open.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

DATABASE_ENV = "HISCI_DATABASE_URL"
HEAD = "0002"  # the newest migration in migrations/versions
#: the reaper's filter, written as in the partial index ix_jobs_active so both SQLite and
#: PostgreSQL use that index (a bound-parameter IN would not match it)
ACTIVE_SQL = "state IN ('queued', 'held', 'running')"
metadata = sa.MetaData()

jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(64)),
    sa.Column("owner_id", sa.String(64)),
    sa.Column("plugin", sa.String(200), nullable=False),
    sa.Column("version", sa.String(64)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("queue", sa.String(32)),
    sa.Column("worker", sa.String(200)),
    sa.Column("host", sa.String(200)),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("started", sa.Float),
    sa.Column("finished", sa.Float),
    sa.Column("parent_id", sa.String(32)),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
)

users = sa.Table(
    "users", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("worker", sa.Boolean, nullable=False, server_default=sa.false()),
)

_ENGINES: dict[tuple[int, str], Engine] = {}
_LOCK = threading.Lock()
_MIGRATED: set[str] = set()  # URLs migrated by this process or the one it was forked from


def database_url(data_dir: Path, url: str | None = None) -> str:
    """``url``, else ``HISCI_DATABASE_URL``, else ``sqlite:///<data dir>/index.sqlite``."""
    url = url or os.environ.get(DATABASE_ENV)
    if url:
        return url
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'index.sqlite'}"


def open_index(data_dir: Path, url: str | None = None) -> Engine:
    """The engine for this data dir (one per process and URL), migrated to the head revision."""
    url = database_url(data_dir, url)
    key = (os.getpid(), url)  # a forked work horse gets its own engine, never its parent's sockets
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _make_engine(url)
            if url not in _MIGRATED:  # a work horse forked after its worker migrated skips it
                migrate(engine)
                _MIGRATED.add(url)
            if url.startswith("sqlite:///"):
                os.chmod(url[len("sqlite:///"):], 0o600)  # it holds the users' token hashes
            _ENGINES[key] = engine
    return engine


def _make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, json_serializer=_dumps)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                              json_serializer=_dumps)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # writers take the write lock up front: two processes updating one job serialise
        # instead of failing on a lock upgrade
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def _dumps(document: Any) -> str:
    from ..storage import _jsonable

    return json.dumps(document, default=_jsonable, ensure_ascii=False)


def migrate(engine: Engine) -> None:
    """Run the shipped Alembic migrations up to head (cheap when already there)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == HEAD:
            return
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.connect().execution_options(write=True) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()


def write_conn(engine: Engine) -> sa.Connection:
    """A connection whose transactions hold the write lock (SQLite) from their start."""
    return engine.connect().execution_options(write=True)


def lock_row(conn: sa.Connection, job_id: str) -> sa.Row | None:
    """The job's row, locked for this transaction (FOR UPDATE on PostgreSQL)."""
    query = sa.select(jobs.c.doc).where(jobs.c.id == job_id)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    return conn.execute(query).first()
