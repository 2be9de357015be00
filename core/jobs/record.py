"""The job record and its one state machine.

Every writer (runner, worker, service, reaper, API, hicli, web app) changes a job through
the methods of :class:`JobRecord`; :class:`hisci.jobs.book.JobBook` persists the change
(index row first, then job.json). An illegal transition raises :class:`IllegalTransition`
when ``HISCI_STRICT_STATES=1`` (the test suite sets it) and is otherwise refused with a
warning in the log, leaving the record unchanged.

States::

    queued  -> running | held | cancelled | failed
    held    -> queued | cancelled | failed
    running -> succeeded | failed | cancelled | queued (requeue: lost worker, shutdown)
    failed, cancelled -> queued (retry: a new attempt; the old one goes to ``history``)
    succeeded -> (nothing)
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from ..errors import HisciError

log = logging.getLogger("hisci.jobs.record")
STRICT_ENV = "HISCI_STRICT_STATES"
KINDS = ("job", "workflow", "parallel", "sweep", "step", "chunk", "point", "merge", "preview")


class JobState(str, Enum):
    QUEUED = "queued"
    HELD = "held"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED

    @property
    def active(self) -> bool:
        """Queued, held or running: what the reaper watches."""
        return not self.finished


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
ACTIVE = (JobState.QUEUED, JobState.HELD, JobState.RUNNING)
STATES = tuple(s.value for s in JobState)
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.HELD, JobState.CANCELLED, JobState.FAILED}),
    JobState.HELD: frozenset({JobState.QUEUED, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
    JobState.SUCCEEDED: frozenset(),
}


class IllegalTransition(HisciError):
    """A writer asked for a state change the machine does not allow."""

    code = "illegal_transition"


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "") in ("1", "true", "yes")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def timestamp(iso: str | None) -> float | None:
    """Seconds since the epoch of an ISO time (None stays None)."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


@dataclass
class JobRecord:
    """One job: the job.json document (``data``) with typed access and the transitions.

    The document keeps every provenance field (params, inputs, packages, figures, ...);
    the properties below are the ones the index stores. Methods return True when the
    change was applied and False when it was refused (production) - in strict mode a
    refusal raises :class:`IllegalTransition`.
    """

    data: dict[str, Any] = field(default_factory=dict)

    # -- typed fields ---------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def state(self) -> JobState:
        return JobState(self.data.get("status", JobState.QUEUED.value))

    @property
    def owner(self) -> str | None:
        return self.data.get("owner")

    @property
    def plugin_id(self) -> str:
        return (self.data.get("plugin") or {}).get("id", "")

    @property
    def kind(self) -> str:
        return self.data.get("kind") or "job"

    @property
    def parent_id(self) -> str | None:
        return self.data.get("parent_id")

    @property
    def attempts(self) -> int:
        """Attempts started so far (the current one while running)."""
        return int(self.data.get("attempts") or 0)

    @property
    def retries(self) -> int:
        return int(self.data.get("retries") or 0)

    @property
    def reason(self) -> str | None:
        return self.data.get("reason")

    def to_dict(self) -> dict[str, Any]:
        return self.data

    # -- the machine ----------------------------------------------------------------------
    def can(self, target: JobState) -> bool:
        return target in TRANSITIONS[self.state]

    def _move(self, target: JobState, why: str) -> bool:
        if self.can(target):
            self.data["status"] = target.value
            self.data["updated"] = now()
            return True
        return self._refuse(f"job {self.data.get('id')}: {self.state.value} -> {target.value} is not allowed"
                            f" ({why})")

    def _refuse(self, message: str) -> bool:
        if strict():
            raise IllegalTransition(message, given=self.state.value,
                                    allowed=sorted(s.value for s in TRANSITIONS[self.state]))
        log.warning("refused: %s", message)
        return False

    def start(self, worker: str | None = None, host: str | None = None, **fields: Any) -> bool:
        """queued -> running: a new attempt begins on ``worker`` at ``host``."""
        if not self._move(JobState.RUNNING, "start"):
            return False
        self.data.update(attempts=self.attempts + 1, worker=worker, host=host, started=now(),
                         finished=None, reason=None, **fields)
        return True

    def progress(self, fraction: float, message: str = "") -> bool:
        """Progress of a running job (0..1)."""
        if self.state != JobState.RUNNING:
            return self._refuse(f"job {self.data.get('id')}: progress while {self.state.value}")
        self.data.update(progress=round(float(fraction), 4), message=message)
        return True

    def finish(self, state: JobState | str, reason: str | None = None, **fields: Any) -> bool:
        """-> succeeded | failed | cancelled with a one-line reason (None on success)."""
        state = JobState(state)
        if not state.finished:
            return self._refuse(f"finish() needs succeeded, failed or cancelled, not {state.value}")
        if not self._move(state, "finish"):
            return False
        self.data.update(reason=reason, finished=now(), held=False, **fields)
        if state == JobState.SUCCEEDED:
            self.data.update(progress=1.0, message=fields.get("message", "done"))
        return True

    def fail(self, reason: str, **fields: Any) -> bool:
        """running -> failed; when THE retry rule (:meth:`may_retry`) allows another attempt,
        queued again in the same change (the failed attempt goes to ``history``). So no reader
        (a group's refresh, a polling client) ever sees a failure that is about to be retried;
        the caller enqueues the new attempt when :attr:`state` is ``queued`` afterwards (and if
        it dies first, the reaper enqueues a queued record that Redis does not hold)."""
        if not self.finish(JobState.FAILED, reason, **fields):
            return False
        if self.may_retry():
            self.requeue(reason)
        return True

    def requeue(self, reason: str) -> bool:
        """-> queued as a new attempt; the attempt that ended goes to ``history``."""
        was = self.state
        if not self._move(JobState.QUEUED, "requeue"):
            return False
        history = self.data.setdefault("history", [])
        history.append({"attempt": self.attempts, "status": was.value, "reason": self.reason,
                        "worker": self.data.get("worker"), "host": self.data.get("host"),
                        "started": self.data.get("started"), "finished": self.data.get("finished") or now()})
        self.data.update(started=None, finished=None, reason=None, progress=0.0, held=False,
                         message=f"retrying after: {reason}")
        return True

    def hold(self, message: str) -> bool:
        """queued -> held: no live worker can take it yet (``message`` says why)."""
        if not self._move(JobState.HELD, "hold"):
            return False
        self.data.update(held=True, message=message)
        return True

    def release(self, message: str = "") -> bool:
        """held -> queued: a worker that fits is live."""
        if not self._move(JobState.QUEUED, "release"):
            return False
        self.data.update(held=False, message=message)
        return True

    def may_retry(self) -> bool:
        """THE retry rule: a failed attempt is retried while attempts <= ``runtime.retries``.
        Cancelled jobs are never retried automatically."""
        return self.state == JobState.FAILED and self.attempts <= self.retries

    def note(self, **fields: Any) -> None:
        """Fields that are not the state (message, routing, links...)."""
        if "status" in fields:
            raise HisciError("note() cannot change the state", hint="use start/finish/requeue/hold/release")
        self.data.update(fields)

    # -- the index row --------------------------------------------------------------------
    def index_row(self) -> dict[str, Any]:
        """The columns the job index keeps."""
        d = self.data
        plugin = d.get("plugin") or {}
        return {
            "id": d["id"], "owner": d.get("owner"),
            "owner_id": d.get("owner_id") or (f"name:{d['owner']}" if d.get("owner") else None),
            "plugin": plugin.get("id", ""), "version": plugin.get("version"),
            "state": self.state.value, "queue": d.get("queue"), "worker": d.get("worker"), "host": d.get("host"),
            "created": timestamp(d.get("created")) or time.time(), "started": timestamp(d.get("started")),
            "finished": timestamp(d.get("finished")), "parent_id": d.get("parent_id"), "kind": self.kind,
            "attempt": self.attempts, "reason": (d.get("reason") or None) and str(d["reason"])[:500],
            "progress": float(d.get("progress") or 0.0),
        }


class FolderBook:
    """The record of a local run (``hicli run``): no index, job.json in the output folder.
    Same ``apply`` interface as :class:`hisci.jobs.book.JobBook`."""

    def __init__(self, folder: Any, record: JobRecord | dict[str, Any]) -> None:
        from pathlib import Path

        self.path = Path(folder) / "job.json"
        self.record = record if isinstance(record, JobRecord) else JobRecord(record)

    def apply(self, job_id: str, change: Any) -> JobRecord:
        from ..storage import write_json

        if change(self.record) is not False:
            write_json(self.path, self.record.data)
        return self.record
