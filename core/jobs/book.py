"""JobBook: the one place job records are written - index row first, then job.json.

``apply(job_id, change)`` runs ``change(record)`` (a :class:`JobRecord` method call) inside a
transaction that holds the job's row (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), updates the row and writes job.json atomically before the lock is let go, so two
processes changing one job never lose a field.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import InputError
from ..storage import read_json
from .index import ACTIVE_SQL, jobs, lock_row, open_index, write_conn
from .record import STATES, JobRecord, timestamp
from .store import JobNotFound, JobStore

log = logging.getLogger("hisci.jobs.book")
BULK = 500


@dataclass(frozen=True)
class JobFilter:
    """What ``GET /jobs`` may ask for: ``owner_id`` (a user's own jobs) or ``owner`` (a
    name, for admins); neither means every owner (admins only)."""

    owner_id: str | None = None
    owner: str | None = None
    state: str | None = None
    plugin: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    q: str | None = None
    parent_id: str | None = None
    top_level: bool = True


@dataclass
class RebuildReport:
    indexed: int = 0
    unreadable: list[str] = field(default_factory=list)


class JobBook:
    """Job records in the index (SQLite/PostgreSQL) and in ``jobs/<id>/job.json``."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.store = JobStore(Path(data_dir))
        self.engine = open_index(Path(data_dir), database_url)

    # -- writes ---------------------------------------------------------------------------
    def create(self, *records: JobRecord | dict[str, Any]) -> list[JobRecord]:
        """Insert new records (one transaction), then write their job.json files."""
        made = [r if isinstance(r, JobRecord) else JobRecord(r) for r in records]
        with write_conn(self.engine) as conn, conn.begin():
            conn.execute(jobs.insert(), [{**r.index_row(), "doc": r.data} for r in made])
            for record in made:
                self.store.write(record.data)
        return made

    def apply(self, job_id: str, change: Callable[[JobRecord], Any]) -> JobRecord:
        """Run ``change(record)`` under the row lock; a change that returns False (a refused
        transition) writes nothing. Returns the record as it now stands."""
        with write_conn(self.engine) as conn, conn.begin():
            row = lock_row(conn, job_id)
            if row is None:
                raise JobNotFound(f"job '{job_id}' not found", given=job_id)
            record = JobRecord(_doc(row.doc))
            if change(record) is False:
                return record
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(**record.index_row(), doc=record.data))
            self.store.write(record.data)
        return record

    def note(self, job_id: str, **fields: Any) -> JobRecord:
        """Set fields that are not the state (message, links, ...)."""
        return self.apply(job_id, lambda r: r.note(**fields))

    def delete(self, job_id: str) -> None:
        self.delete_row(job_id)
        self.store.delete(job_id)

    def delete_row(self, job_id: str) -> None:
        """Remove the index row only: the job is gone for every reader and writer (``apply``
        finds no row), while a running job's folder waits for the reaper's purge."""
        with write_conn(self.engine) as conn, conn.begin():
            conn.execute(jobs.delete().where(jobs.c.id == job_id))

    # -- reads ----------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs.c.doc).where(jobs.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(f"job '{job_id}' not found", given=job_id)
        return JobRecord(_doc(row.doc))

    def children(self, parent_id: str) -> list[JobRecord]:
        """The child records of a group in the order they were given (``child_index``)."""
        query = sa.select(jobs.c.doc).where(jobs.c.parent_id == parent_id).order_by(jobs.c.created, jobs.c.id)
        with self.engine.connect() as conn:
            found = [JobRecord(_doc(r.doc)) for r in conn.execute(query)]
        return sorted(found, key=lambda r: r.data.get("child_index", 0))

    def active(self) -> list[JobRecord]:
        """Queued, held and running records: all the reaper needs (the state index keeps
        this independent of how many finished jobs there are)."""
        query = sa.select(jobs.c.doc).where(sa.text(ACTIVE_SQL))
        with self.engine.connect() as conn:
            return [JobRecord(_doc(r.doc)) for r in conn.execute(query)]

    def page(self, where: JobFilter, limit: int = 50, cursor: str | None = None
             ) -> tuple[list[dict[str, Any]], str | None]:
        """One page, newest first, and the cursor of the next page (None at the end)."""
        docs, next_cursor = self.page_json(where, limit, cursor)
        return [json.loads(d) for d in docs], next_cursor

    def page_json(self, where: JobFilter, limit: int = 50, cursor: str | None = None
                  ) -> tuple[list[str], str | None]:
        """As :meth:`page`, each record as the JSON text the index holds (the API sends it on
        without decoding and encoding 50 documents per page)."""
        query = sa.select(sa.cast(jobs.c.doc, sa.Text).label("doc"), jobs.c.created, jobs.c.id)
        for clause in _clauses(where):
            query = query.where(clause)
        if cursor:
            created, last_id = _decode(cursor)
            query = query.where(sa.or_(jobs.c.created < created,
                                       sa.and_(jobs.c.created == created, jobs.c.id < last_id)))
        query = query.order_by(jobs.c.created.desc(), jobs.c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = _encode(rows[-1].created, rows[-1].id) if more and rows else None
        return [r.doc if isinstance(r.doc, str) else json.dumps(r.doc) for r in rows], next_cursor

    # -- recovery -------------------------------------------------------------------------
    def rebuild(self) -> RebuildReport:
        """Empty the job index and refill it from the job folders; reports unreadable ones."""
        report = RebuildReport()
        with write_conn(self.engine) as conn, conn.begin():
            conn.execute(jobs.delete())
            batch: list[dict[str, Any]] = []
            for record in self._folders(report):
                batch.append({**record.index_row(), "doc": record.data})
                if len(batch) >= BULK:
                    conn.execute(jobs.insert(), batch)
                    report.indexed += len(batch)
                    batch = []
            if batch:
                conn.execute(jobs.insert(), batch)
                report.indexed += len(batch)
        return report

    def _folders(self, report: RebuildReport) -> Iterable[JobRecord]:
        if not self.store.jobs_dir.is_dir():
            return
        for folder in sorted(self.store.jobs_dir.iterdir()):
            if not folder.is_dir():
                continue
            try:
                data = read_json(folder / "job.json")
                record = JobRecord(data)
                if record.id != folder.name or record.state.value not in STATES:
                    raise ValueError(f"id {data.get('id')!r} / status {data.get('status')!r}")
                record.index_row()
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                report.unreadable.append(f"{folder.name}: {type(exc).__name__}: {exc}")
                continue
            yield record


def _clauses(where: JobFilter) -> list[Any]:
    clauses: list[Any] = []
    if where.owner_id is not None:
        clauses.append(jobs.c.owner_id == where.owner_id)
    if where.owner is not None:
        clauses.append(jobs.c.owner == where.owner)
    if where.state:
        clauses.append(jobs.c.state == where.state)
    if where.plugin:
        clauses.append(jobs.c.plugin == where.plugin)
    if where.q:
        escaped = where.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(jobs.c.plugin.ilike(f"%{escaped}%", escape="\\"))
    for name, value in (("created_after", where.created_after), ("created_before", where.created_before)):
        if value:
            ts = timestamp(value)
            if ts is None:
                raise InputError(f"{name}: {value!r} is not an ISO 8601 time", given=value,
                                 hint="e.g. 2026-12-03T10:00:00+00:00")
            clauses.append(jobs.c.created > ts if name == "created_after" else jobs.c.created < ts)
    if where.parent_id:
        clauses.append(jobs.c.parent_id == where.parent_id)
    elif where.top_level:  # preview runs (the web app's "Run example") are not listed
        clauses += [jobs.c.parent_id.is_(None), jobs.c.kind != "preview"]
    return clauses


def _doc(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def _encode(created: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created!r}|{job_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[float, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = text.split("|", 1)
        return float(created), job_id
    except (ValueError, UnicodeDecodeError):
        raise InputError("cursor is not one this server gave out", given=cursor,
                         hint="pass the next_cursor of the previous page, or leave it out") from None
