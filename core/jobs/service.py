"""JobService: the one facade the API, hicli serve and the web app call."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job

from ..errors import ConflictError, HisciError, InputError, ParamsError, Problem
from ..inputs import InputAccess, pin_inputs
from ..live import LiveSpec, live_spec_for, split_live
from ..record import new_record
from ..registry import Registry
from ..requests import canonical_request
from ..settings import Settings
from ..storage import read_json
from . import groups, keys
from .book import JobBook, JobFilter
from .groups import CHILD_KINDS, GROUP_KINDS, ChildSpec, GroupSpec
from .idempotency import IdempotencyStore, fingerprint
from .queueing import SERIALIZER, enqueue
from .record import JobRecord, JobState
from .routing import fits, requirement, route
from .store import JobNotFound, JobStore, UploadStore
from .users import User, UserStore, owns


class JobService:
    """Submit, inspect and control jobs for authenticated users."""

    def __init__(self, settings: Settings, registry: Registry, redis: Redis | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.redis = redis or (Redis.from_url(settings.redis_url) if settings.redis_url else None)
        self.book = JobBook(settings.data_dir, settings.database_url)
        self.store: JobStore = self.book.store
        self.uploads = UploadStore(settings.data_dir, int(settings.upload_limit_mb * 2**20))
        self.users = UserStore.open(settings.data_dir, settings.database_url)
        self.idempotency = IdempotencyStore(settings.data_dir)

    # -- requests -------------------------------------------------------------------------
    def validate(self, plugin_id: str, request: dict[str, Any], user: User | None = None) -> dict[str, Any]:
        """The params a submit would store; with ``user`` its inputs are checked (confined) too."""
        plugin = self.registry.get(plugin_id)
        if user is None:
            return plugin.validate_request(canonical_request(request, plugin_id))
        return self._checked(user, plugin, request)[0]

    def save_upload(self, user: User, filename: str, stream: BinaryIO) -> dict[str, Any]:
        return self.uploads.save(user.id, filename, stream)

    def access(self, user: User) -> InputAccess:
        """What ``user``'s jobs may read: own uploads, plugin files, data roots for admins."""
        return InputAccess(
            upload_path=lambda upload_id: self.uploads.path(user.id, upload_id, user.admin),
            owns_upload_folder=lambda folder: user.admin or self.uploads.owns(user.id, folder.name),
            uploads_dir=self.uploads.uploads_dir, admin=user.admin,
            data_roots=tuple(r.resolve() for r in self.settings.data_roots))

    def _checked(self, user: User, plugin: Any, request: Any, live_inputs: tuple[str, ...] = ()
                 ) -> tuple[dict[str, Any], dict[str, list[Path]]]:
        """Normalise once (core.requests), validate, confine and pin the inputs (those fed by a
        live source need no file)."""
        from ..inputs import resolve_inputs

        params = plugin.validate_request(canonical_request(request, plugin.id), live_inputs=live_inputs)
        files = resolve_inputs(plugin, params, access=self.access(user))
        return pin_inputs(params, files), files

    # -- jobs ---------------------------------------------------------------------------
    def submit(self, user: User, plugin_id: str, request: dict[str, Any], *, chunks: int | None = None,
               sweep: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate, write the record (index, then job.json) and enqueue on cpu or gpu.

        ``sweep`` (``{"extra.center": [..]}``) makes a sweep group, one child per value. A
        parallel plugin becomes a group of chunks and a merge when ``chunks`` is given or
        more than one live worker could take chunks (:mod:`hisci.jobs.scaleout`).
        """
        from . import scaleout

        request, live_raw = split_live(request)
        if live_raw:  # a live job: one job on one worker (no sweep, no chunks)
            plugin = self._runnable(plugin_id)
            live = live_spec_for(plugin, live_raw)
            self._check_live(user, live)
            params, files = self._checked(user, plugin, request, live.names)
            return self._submit(user, plugin, params, files, live_spec=live.to_json())
        if sweep:
            return scaleout.submit_sweep(self, user, plugin_id, request, sweep)
        group = scaleout.submit_parallel(self, user, plugin_id, request, chunks)
        if group is not None:
            return group
        plugin = self._runnable(plugin_id)
        if plugin.is_workflow:  # a job group: one child per step (hisci.workflow.service)
            from ..workflow.service import submit_workflow

            return submit_workflow(self, user, plugin, request)
        params, files = self._checked(user, plugin, request)
        return self._submit(user, plugin, params, files)

    def submit_once(self, user: User, plugin_id: str, request: dict[str, Any],
                    key: str | None, *, chunks: int | None = None,
                    sweep: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """``submit`` behind an ``Idempotency-Key``: ``(record, replayed)``; a repeated key of
        the same user returns the first job (``replayed`` True) instead of a new one."""
        def submit() -> dict[str, Any]:
            return self.submit(user, plugin_id, request, chunks=chunks, sweep=sweep)

        if key is None:
            return submit(), False

        def existing(job_id: str) -> dict[str, Any] | None:
            try:
                return self.get(user, job_id)
            except JobNotFound:
                return None

        body = {"request": request, "chunks": chunks, "sweep": sweep}
        return self.idempotency.once(str(user.id or user.name), key, fingerprint(plugin_id, body),
                                     submit, existing)

    def submit_params(self, user: User, plugin_id: str, params: dict[str, Any],
                      **fields: Any) -> dict[str, Any]:
        """Submit already-resolved params (retry): inputs are the stored paths (checked again)."""
        plugin = self._runnable(plugin_id)
        params, files = self._checked(user, plugin, params)
        return self._submit(user, plugin, params, files, **fields)

    def _runnable(self, plugin_id: str) -> Any:
        plugin = self.registry.get(plugin_id)
        if not plugin.runnable:
            raise ParamsError([Problem("this plugin has no runtime block, so it cannot be run",
                                       pointer="/runtime", given=plugin_id)], plugin_id=plugin_id)
        return plugin

    def _new(self, user: User, plugin: Any, params: dict[str, Any], files: dict[str, list[Path]], redis: Redis,
             **fields: Any) -> JobRecord:
        """A queued (or held) record routed to its queue; not yet stored."""
        needs = requirement(plugin, params, sum(p.stat().st_size for ps in files.values() for p in ps))
        with redis_or_503():
            where = route(plugin, redis)
            ok, why = fits(redis, where.queue, needs)
        record = JobRecord(new_record(plugin, params, files, owner=user.name))
        record.note(owner_id=user.id, queue=where.queue, fell_back=where.fell_back,
                    routing=where.note, timeout=plugin.runtime.timeout, retries=plugin.runtime.retries,
                    attempts=0, needs=needs, held=False, message="", kind="job", parent_id=None, **fields)
        if fields.get("live_spec"):  # a live job runs until stopped: no timeout, the idle timeout ends it
            record.note(timeout=-1)
        if not ok:
            record.hold(why)
        return record

    def _check_live(self, user: User, live: LiveSpec) -> None:
        """Live sources make a worker read folders and connect to addresses: admins only, and
        watched folders must lie under a data root (``HISCI_DATA_ROOTS``)."""
        if not user.admin:
            raise InputError("live jobs are for admins: their sources are read on the worker", pointer="/live",
                             hint="ask an admin to submit it, or run it live on your own machine")
        roots = tuple(r.resolve() for r in self.settings.data_roots)
        for name, folder in live.watch.items():
            path = Path(folder).expanduser().resolve()
            if not any(path == r or r in path.parents for r in roots):
                raise InputError(f"live.watch.{name}: {folder} is not under a data root", given=folder,
                                 pointer=f"/live/watch/{name}", allowed=[str(r) for r in roots] or None,
                                 hint="set HISCI_DATA_ROOTS to the detector folders the service may read")

    def _submit(self, user: User, plugin: Any, params: dict[str, Any], files: dict[str, list[Path]],
                **fields: Any) -> dict[str, Any]:
        """Store the record, then enqueue it; when Redis refuses, the record is removed again
        and the caller gets 503: a failed submit leaves nothing behind that could run later."""
        redis = self._redis()
        record = self._new(user, plugin, params, files, redis, **fields)
        self.book.create(record)
        if record.state == JobState.QUEUED:
            try:
                enqueue(redis, self.settings, record.data)
            except RedisError as exc:
                self.book.delete(record.id)
                raise RedisUnavailable.from_error(exc) from None
        return record.data

    def submit_group(self, user: User, parent: GroupSpec, children: list[ChildSpec],
                     finish: ChildSpec | None = None) -> dict[str, Any]:
        """Create a job group (workflow, parallel job, sweep) and enqueue its children.

        ``finish`` (a merge or final step) depends on every other child and runs even when
        some failed only if it says ``allow_failure``. Returns the parent record with its
        ``children``. See :mod:`hisci.jobs.groups`."""
        if parent.kind not in GROUP_KINDS:
            raise InputError(f"group kind {parent.kind!r} is not one of {', '.join(GROUP_KINDS)}",
                             given=parent.kind, allowed=list(GROUP_KINDS))
        specs = list(children) + ([finish] if finish else [])
        if not children:
            raise InputError("a job group needs at least one child", given=[], hint="pass children=[ChildSpec(...)]")
        names = [c.name for c in specs]
        if len(set(names)) != len(names):
            raise InputError("child names must be unique within a group", given=names)
        redis = self._redis()
        group_plugin = self.registry.get(parent.plugin)
        head = JobRecord(new_record(group_plugin, parent.request, {}, owner=user.name))
        head.note(owner_id=user.id, kind=parent.kind, parent_id=None, queue=None, attempts=0,
                  retries=0, held=False, message="", children_names=names, **parent.fields)
        made: dict[str, JobRecord] = {}
        for index, spec in enumerate(specs):
            if spec.kind not in CHILD_KINDS:
                raise InputError(f"child {spec.name!r}: kind {spec.kind!r} is not one of {', '.join(CHILD_KINDS)}",
                                 given=spec.kind, allowed=list(CHILD_KINDS))
            if spec.runner and not (spec.runner.startswith("hisci.") and ":" in spec.runner):
                raise InputError(f"child {spec.name!r}: runner {spec.runner!r} must be 'hisci.<module>:<function>'",
                                 given=spec.runner, hint="runners live in the hisci package (workers import them)")
            plugin = self._runnable(spec.plugin)
            if spec.validated:
                params, files = plugin.params.normalize(copy.deepcopy(spec.request)), {}
            else:
                params, files = self._checked(user, plugin, spec.request)
            record = JobRecord(new_record(plugin, params, files, owner=user.name))
            with redis_or_503():
                queue = spec.queue or route(plugin, redis).queue
            needs = requirement(plugin, params, sum(p.stat().st_size for ps in files.values() for p in ps))
            record.note(owner_id=user.id, kind=spec.kind, name=spec.name, parent_id=head.id,
                        queue=queue, timeout=plugin.runtime.timeout, attempts=0, held=False, message="",
                        retries=plugin.runtime.retries if spec.retries is None else spec.retries,
                        allow_failure=spec.allow_failure, runner=spec.runner, child_index=index,
                        **{"needs": needs, **spec.fields})
            made[spec.name] = record
        after = {spec.name: (tuple(names[:-1]) if finish is not None and spec is finish else spec.after)
                 for spec in specs}
        for name, record in made.items():
            unknown = [a for a in after[name] if a not in made]
            if unknown:
                raise InputError(f"child {name!r} waits for unknown children {unknown}", given=unknown,
                                 allowed=names)
            record.note(depends_on=[made[a].id for a in after[name]])
        groups.order(list(made.values()))  # refuses cycles before anything is stored
        self.book.create(head, *made.values())
        groups.dispatch(self.settings, redis, self.book, list(made.values()))
        return self.get(user, head.id)

    def children(self, user: User, job_id: str) -> list[dict[str, Any]]:
        """The children of a group (empty for a plain job), oldest first."""
        parent = self._own(user, job_id)
        return [_child_summary(c) for c in _in_order(parent, self.book.children(job_id))]

    def get(self, user: User, job_id: str) -> dict[str, Any]:
        record = self._own(user, job_id)
        data = dict(record.data)
        if record.kind in GROUP_KINDS:
            data["children"] = [_child_summary(c) for c in _in_order(record, self.book.children(job_id))]
        return data

    def _own(self, user: User, job_id: str) -> JobRecord:
        record = self.book.get(job_id)
        if not (user.admin or owns(user, record.data)):
            raise JobNotFound(f"job '{job_id}' not found", given=job_id)
        return record

    def list_jobs(self, user: User, status: str | None = None, plugin: str | None = None,
                  limit: int = 50, cursor: str | None = None, *, owner: str | None = None,
                  created_after: str | None = None, created_before: str | None = None,
                  q: str | None = None, parent: str | None = None,
                  as_json: bool = False) -> tuple[list[Any], str | None]:
        """One page of jobs, newest first, and the next page's cursor. A user sees their own;
        an admin sees everyone's, or one ``owner``'s. Top-level jobs unless ``parent``. With
        ``as_json`` each record is its JSON text (the API's list page sends it on as is)."""
        if owner is not None and not user.admin and owner != user.name:
            raise InputError("only admins may list other users' jobs", given=owner, hint="leave owner out")
        mine = {"owner": owner} if user.admin else {"owner_id": user.id}
        where = JobFilter(**mine, state=status, plugin=plugin, created_after=created_after,
                          created_before=created_before, q=q, parent_id=parent)
        return (self.book.page_json if as_json else self.book.page)(where, limit, cursor)

    def log(self, user: User, job_id: str, offset: int = 0) -> tuple[str, int]:
        self._own(user, job_id)
        path = self.store.folder(job_id) / "log.txt"
        if not path.exists():
            return "", offset
        offset = min(max(offset, 0), path.stat().st_size)  # a huge offset reads nothing
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        return data.decode("utf-8", "replace"), offset + len(data)

    def events(self, user: User, job_id: str, after: str = "0-0") -> list[dict[str, Any]]:
        from .events import EventStream

        self._own(user, job_id)
        return EventStream(self._redis(), job_id).read(after)

    def live_events(self, user: User, job_id: str, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        """A live job's published results and lag reports with ``n > after`` (from the job
        folder's ``live/events.jsonl``), and the ``n`` to ask after next time."""
        from ..live import EVENTS_FILE, read_events

        self.get(user, job_id)
        events = read_events(self.store.folder(job_id) / EVENTS_FILE, after, limit)
        return {"events": events, "next": events[-1]["n"] if events else after}

    def files(self, user: User, job_id: str) -> list[dict[str, Any]]:
        self._own(user, job_id)
        return self.store.files(job_id)

    def file_path(self, user: User, job_id: str, relative: str) -> Path:
        self._own(user, job_id)
        return self.store.file(job_id, relative)

    def figure(self, user: User, job_id: str, name: str) -> dict[str, Any]:
        name = name if name.endswith(".json") else f"{name}.json"
        return read_json(self.file_path(user, job_id, name))

    def cancel(self, user: User, job_id: str) -> dict[str, Any]:
        """Queued or held: cancelled at once. Running: a cancel flag that ctx.progress sees;
        the reaper stops the work horse after the grace period. A group: its children."""
        record = self._own(user, job_id)
        if record.state.finished:
            return self.get(user, job_id)
        redis = self._redis()
        if record.kind in GROUP_KINDS:
            self.book.note(job_id, cancel_requested=True, message="cancelling")
            for child in self.book.children(job_id):
                if child.state.active:
                    self._cancel_one(redis, child)
            groups.derive(self.book, job_id)
            return self.get(user, job_id)
        self._cancel_one(redis, record)
        return self.get(user, job_id)

    def _cancel_one(self, redis: Redis, record: JobRecord) -> None:
        with redis_or_503():
            redis.set(keys.cancel(record.id), time.time(), ex=7 * 86400)
        if record.state in (JobState.QUEUED, JobState.HELD):
            try:
                Job.fetch(keys.rq_job_id(record.id, record.attempts + 1), connection=redis,
                          serializer=SERIALIZER).cancel()
            except (NoSuchJobError, InvalidJobOperation):
                pass
            done = self.book.apply(record.id, lambda r: r.state in (JobState.QUEUED, JobState.HELD)
                                   and r.finish(JobState.CANCELLED, "cancelled before it started"))
            if done.state == JobState.CANCELLED:
                return
        self.book.apply(record.id, lambda r: r.state == JobState.RUNNING and r.note(message="cancelling"))

    def retry(self, user: User, job_id: str) -> dict[str, Any]:
        """A plain job: a new job with the same plugin, params and inputs (``retry_of``).
        A group: its failed and cancelled children run again (new attempts), nothing else."""
        old = self._own(user, job_id)
        if not old.state.finished:
            raise ConflictError(f"job {job_id} is still {old.state.value}", given=old.state.value,
                             allowed=["succeeded", "failed", "cancelled"], hint="cancel it first")
        if old.kind in GROUP_KINDS:
            return self._retry_group(user, old)
        if old.kind == "preview":
            raise ConflictError("a preview run cannot be retried", given=job_id,
                                hint="run the example again from the preview page")
        owner = User(old.owner or user.name, user.admin, old.data.get("owner_id") or f"name:{old.owner}")
        return self.submit_params(owner, old.plugin_id, old.data["params"], retry_of=job_id)

    def _retry_group(self, user: User, parent: JobRecord) -> dict[str, Any]:
        if parent.state == JobState.SUCCEEDED:
            raise InputError(f"job group {parent.id} succeeded: nothing to retry", given="succeeded",
                             allowed=["failed", "cancelled"])
        redis = self._redis()
        rerun = [c for c in self.book.children(parent.id) if c.state in (JobState.FAILED, JobState.CANCELLED)]
        for child in rerun:
            redis.delete(keys.cancel(child.id))
        self.book.apply(parent.id, lambda r: r.requeue("retry of the failed children")
                        and r.note(cancel_requested=False))
        again = [self.book.apply(c.id, lambda r: r.requeue("group retry")) for c in rerun]
        groups.dispatch(self.settings, redis, self.book, again)
        return self.get(user, parent.id)

    def delete(self, user: User, job_id: str) -> None:
        """A finished job goes at once. An unfinished one leaves the index at once (404 and
        out of every list; a running job's own writes can no longer land) and is cancelled;
        its folder is removed by the reaper once the job has stopped (no heartbeat). A group
        takes its children with it. A deleted job never reappears."""
        record = self._own(user, job_id)
        for child in [*self.book.children(job_id), record]:
            if child.state.finished:
                self.book.delete(child.id)
                continue
            self.store.mark_deleted(child.id)
            self.book.delete_row(child.id)
            try:
                redis = self._redis()
                redis.set(keys.cancel(child.id), time.time(), ex=7 * 86400)
                Job.fetch(keys.rq_job_id(child.id, child.attempts + 1), connection=redis,
                          serializer=SERIALIZER).cancel()
            except (NoSuchJobError, InvalidJobOperation, RedisError):
                pass  # not on a queue (running, held) or Redis away: the reaper finishes it off

    # -- health ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Redis, the data dir, and per queue the waiting jobs and the workers live by
        heartbeat; ``ok`` is false, with ``reasons``, when a queue has waiting jobs and no
        live worker. ``supervisor`` is what ``hicli serve`` restarted (when it runs one)."""
        from .routing import live_workers
        from .supervisor import read_status

        report: dict[str, Any] = {"data_dir_writable": _writable(self.settings.data_dir)}
        reasons: list[str] = []
        try:
            redis = self._redis()
            redis.ping()
            report["redis"] = "ok"
            report["queues"] = {}
            for queue in ("cpu", "gpu"):
                waiting = Queue(queue, connection=redis, serializer=SERIALIZER).count
                workers = live_workers(redis, queue)
                report["queues"][queue] = {"length": waiting, "workers": len(workers), "worker_names": workers}
                if waiting and not workers:
                    reasons.append(f"queue {queue} has {waiting} waiting job(s) and no live worker")
        except Exception as exc:  # noqa: BLE001
            report["redis"] = f"unavailable: {type(exc).__name__}"
            reasons.append(f"redis unavailable: {type(exc).__name__}")
        if not report["data_dir_writable"]:
            reasons.append("the data dir is not writable")
        supervisor = read_status(self.settings.data_dir)
        if supervisor is not None:
            report["supervisor"] = supervisor
            reasons += [f"{name}: {child['state']}" for name, child in supervisor.get("children", {}).items()
                        if child.get("state") not in ("running", "stopped")]
        report["ok"] = not reasons
        report["reasons"] = reasons
        report["plugins"] = len(self.registry)
        return report

    def _redis(self) -> Redis:
        if self.redis is None:
            raise InputError("the job service has no Redis", hint="give the service a Redis URL (HISCI_REDIS_URL) or start its embedded Redis")
        return self.redis


class RedisUnavailable(HisciError):
    """Redis (the queue) cannot be reached: HTTP 503, and nothing was written."""

    code = "unavailable"

    @classmethod
    def from_error(cls, exc: Exception) -> RedisUnavailable:
        return cls(f"the job queue (Redis) is unavailable: {type(exc).__name__}",
                   hint="nothing was stored; retry shortly with the same Idempotency-Key")


@contextmanager
def redis_or_503() -> Iterator[None]:
    """Turn a Redis outage into :class:`RedisUnavailable` (HTTP 503 in the error shape)."""
    try:
        yield
    except RedisError as exc:
        raise RedisUnavailable.from_error(exc) from None


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".hisci-probe"
        probe.write_text("")
        probe.unlink()
        return True
    except OSError:
        return False


def _in_order(parent: JobRecord, children: list[JobRecord]) -> list[JobRecord]:
    """Children in the order the group declared them (creation times can share a millisecond)."""
    names = parent.data.get("children_names") or []
    rank = {name: i for i, name in enumerate(names)}
    return sorted(children, key=lambda c: rank.get(c.data.get("name"), len(rank)))


def _child_summary(child: JobRecord) -> dict[str, Any]:
    d = child.data
    return {"id": child.id, "name": d.get("name"), "kind": child.kind, "plugin": child.plugin_id,
            "status": child.state.value, "reason": child.reason, "progress": d.get("progress", 0.0),
            "attempts": child.attempts, "queue": d.get("queue"), "worker": d.get("worker"), "host": d.get("host"),
            "depends_on": d.get("depends_on") or [], "started": d.get("started"), "finished": d.get("finished"),
            "cached_from": d.get("cached_from")}
