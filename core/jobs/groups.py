"""Job groups: THE parent/child mechanism for workflows, parallel chunks and sweeps.

A group is a parent record (kind ``workflow``, ``parallel`` or ``sweep``; it never runs
itself) and child records (kind ``step``, ``chunk``, ``point`` or ``merge``) that carry
``parent_id``. Children are enqueued on their own queues with RQ ``depends_on`` (a final
``finish`` child depends on all the others). The parent's state is derived from the
children by :func:`refresh`, which the worker calls when a child ends and the reaper calls
every sweep:

- running while any child has started and not all have finished;
- succeeded when all succeeded; failed naming the first failed child; cancelled when
  the group was cancelled (or only cancelled children are left);
- a queued child whose dependency ended badly (and that does not ``allow_failure``) is
  cancelled with the reason "skipped: <name> <state>";
- a queued child whose dependencies have all finished but that RQ no longer holds
  (retried dependency, Redis restart) is enqueued again.

Cancel of the parent cancels the children; retry of the parent re-runs only failed and
cancelled children (each a new attempt of the same record); a lost child is retried alone
by the reaper under the one retry rule (``JobRecord.may_retry``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ..settings import Settings
from . import keys
from .book import JobBook
from .queueing import SERIALIZER, enqueue
from .record import JobRecord, JobState

log = logging.getLogger("hisci.jobs.groups")
GROUP_KINDS = ("workflow", "parallel", "sweep")
CHILD_KINDS = ("step", "chunk", "point", "merge")
PENDING_RQ = (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.STARTED, JobStatus.SCHEDULED)


@dataclass(frozen=True)
class GroupSpec:
    """The parent of a group.

    Parameters
    ----------
    kind : "workflow", "parallel" or "sweep".
    plugin : the plugin id the group stands for (the workflow, the parallel plugin).
    request : the group's own request (its form values), stored as the parent's params.
    fields : extra fields for the parent record (e.g. ``{"sweep": {"param": ..., "values": [...]}}``).
    """

    kind: str
    plugin: str
    request: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChildSpec:
    """One child of a group.

    Parameters
    ----------
    name : unique within the group (step id, ``chunk-3``, ``center=1020.5``, ``merge``).
    plugin : the plugin the child runs.
    request : its request; validated by the plugin unless ``validated`` (then stored as
        params as given - a workflow step whose inputs come from earlier steps).
    kind : "step", "chunk", "point" or "merge".
    after : names of sibling children it waits for (RQ depends_on).
    allow_failure : run even when one of ``after`` failed or was cancelled.
    runner : ``"hisci.<module>:<function>"`` with :func:`hisci.runner.run_plugin`'s keyword
        signature (plugin, params, record, output_dir, progress, cancel_check, xp, book),
        called by the worker instead of ``run_plugin`` (chunk and merge runners, workflow
        steps that resolve their inputs at run time).
    queue : force a queue instead of the plugin's routing.
    retries : automatic retries of this child (default: the plugin's runtime.retries).
    fields : extra fields for the child record (chunk spec, sweep value, ...).
    """

    name: str
    plugin: str
    request: dict[str, Any] = field(default_factory=dict)
    kind: str = "step"
    after: tuple[str, ...] = ()
    allow_failure: bool = False
    runner: str | None = None
    queue: str | None = None
    retries: int | None = None
    validated: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


def order(children: list[JobRecord]) -> list[JobRecord]:
    """Children with every dependency before its dependents (raises on a cycle)."""
    by_id = {c.id: c for c in children}
    done: set[str] = set()
    out: list[JobRecord] = []

    def visit(child: JobRecord, path: tuple[str, ...]) -> None:
        if child.id in done:
            return
        if child.id in path:
            from ..errors import InputError

            raise InputError(f"children depend on each other in a cycle: {' -> '.join(path)}", given=list(path))
        for dep in child.data.get("depends_on") or []:
            if dep in by_id:
                visit(by_id[dep], (*path, child.id))
        done.add(child.id)
        out.append(child)

    for child in children:
        visit(child, ())
    return out


def dispatch(settings: Settings, redis: Redis, book: JobBook, children: list[JobRecord]) -> None:
    """Enqueue queued children in dependency order; a dependency that has not succeeded
    yet becomes an RQ ``depends_on`` on its pending attempt."""
    states = {c.id: c for c in book.children(children[0].parent_id)} if children else {}
    for child in order(children):
        if child.state != JobState.QUEUED:
            continue
        deps = [states[d] for d in child.data.get("depends_on") or [] if d in states]
        waiting = [keys.rq_job_id(d.id, d.attempts + 1) for d in deps if not d.state.finished]
        enqueue(redis, settings, child.data, depends_on=waiting, allow_failure=True)


def refresh(settings: Settings, redis: Redis, book: JobBook, parent_id: str) -> JobRecord:
    """Skip children whose dependencies failed, re-dispatch stranded ones, then derive the
    parent's state and progress from the children."""
    children = book.children(parent_id)
    by_id = {c.id: c for c in children}
    for child in order(children):
        child = by_id[child.id]
        if child.state != JobState.QUEUED:
            continue
        deps = [by_id[d] for d in child.data.get("depends_on") or [] if d in by_id]
        bad = [d for d in deps if d.state in (JobState.FAILED, JobState.CANCELLED)]
        if bad and not child.data.get("allow_failure"):
            why = f"skipped: {bad[0].data.get('name') or bad[0].id} {bad[0].state.value}"
            by_id[child.id] = book.apply(child.id, lambda r, why=why: r.state == JobState.QUEUED
                                         and r.finish(JobState.CANCELLED, why))
            continue
        if all(d.state.finished for d in deps) and _age(child) > 2.0 and _stranded(redis, child, deps):
            enqueue(redis, settings, child.data)
    return derive(book, parent_id, list(by_id.values()))


def derive(book: JobBook, parent_id: str, children: list[JobRecord] | None = None) -> JobRecord:
    """Set the parent's state, reason and progress from its children."""
    children = book.children(parent_id) if children is None else children
    if not children:
        return book.get(parent_id)
    states = [c.state for c in children]
    total = sum(1.0 if c.state.finished else float(c.data.get("progress") or 0.0) for c in children) / len(children)
    summary = {"done": sum(s.finished for s in states), "total": len(children),
               "failed": sum(s == JobState.FAILED for s in states)}

    def change(parent: JobRecord) -> bool:
        target, reason = _target(parent, children)
        parent.data.update(progress=round(total, 4), counts=summary)
        if parent.state.finished:
            return True  # a finished group changes only through retry (requeue)
        if target == parent.state:
            if target == JobState.RUNNING:
                parent.data["message"] = f"{summary['done']} of {summary['total']} children finished"
            return True
        if target.finished and parent.state in (JobState.QUEUED, JobState.HELD):
            parent.start()  # queued -> running -> finished: the machine has no shortcut
        if target.finished:
            return parent.finish(target, reason, progress=round(total, 4),
                                 message="done" if target == JobState.SUCCEEDED else parent.data.get("message", ""))
        if target == JobState.RUNNING and parent.state == JobState.QUEUED:
            return parent.start()
        return True

    return book.apply(parent_id, change)


def _target(parent: JobRecord, children: list[JobRecord]) -> tuple[JobState, str | None]:
    states = [c.state for c in children]
    if all(s.finished for s in states):
        failed = [c for c in children if c.state == JobState.FAILED]
        if failed:
            first = failed[0]
            return JobState.FAILED, f"child {first.data.get('name') or first.id} ({first.id}) failed: {first.reason}"
        if all(s == JobState.SUCCEEDED for s in states):
            return JobState.SUCCEEDED, None
        if parent.data.get("cancel_requested"):
            return JobState.CANCELLED, "cancelled by request"
        first = next(c for c in children if c.state == JobState.CANCELLED)
        return JobState.CANCELLED, f"child {first.data.get('name') or first.id} cancelled: {first.reason}"
    if any(s == JobState.RUNNING or s.finished for s in states) or parent.attempts:
        return JobState.RUNNING, None
    return JobState.QUEUED, None


def _stranded(redis: Redis, child: JobRecord, deps: list[JobRecord], grace: float = 5.0) -> bool:
    """RQ will not start ``child`` by itself: it holds no pending attempt, or the attempt is
    still deferred well after every dependency ended (a dependency's worker was lost, so RQ
    never released its dependents; the dependency's retry is a new RQ job)."""
    try:
        job = Job.fetch(keys.rq_job_id(child.id, child.attempts + 1), connection=redis, serializer=SERIALIZER)
    except NoSuchJobError:
        return True
    status = job.get_status(refresh=False)
    if status == JobStatus.DEFERRED:
        return min((_age(d, "finished") for d in deps), default=grace + 1) > grace
    return status not in PENDING_RQ


def _age(record: JobRecord, key: str = "updated") -> float:
    import time

    from .record import timestamp

    updated = timestamp(record.data.get(key) or record.data.get("updated") or record.data.get("created")) or 0.0
    return time.time() - updated
