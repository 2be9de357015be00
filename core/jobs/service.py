"""JobService: the one facade the API, hicli serve and the web app call."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, BinaryIO

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from ..errors import ConflictError, InputError, ParamsError, Problem
from ..inputs import InputAccess, pin_inputs, resolve_inputs
from ..live import LiveSpec, live_spec_for, split_live
from ..record import JobState, new_record, now
from ..registry import Registry
from ..requests import canonical_request
from ..settings import Settings
from ..storage import read_json
from . import keys
from .queueing import SERIALIZER, enqueue
from .routing import fits, requirement, route
from .store import JobNotFound, JobStore, UploadStore
from .users import User, UserStore, owns


class JobService:
    """Submit, inspect and control jobs for authenticated users."""

    def __init__(self, settings: Settings, registry: Registry, redis: Redis | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.redis = redis or (Redis.from_url(settings.redis_url) if settings.redis_url else None)
        self.store = JobStore(settings.data_dir)
        self.uploads = UploadStore(settings.data_dir, int(settings.upload_limit_mb * 2**20))
        self.users = UserStore(settings.data_dir / "users.json")

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
        params = plugin.validate_request(canonical_request(request, plugin.id), live_inputs=live_inputs)
        files = resolve_inputs(plugin, params, access=self.access(user))
        return pin_inputs(params, files), files

    def _check_live(self, user: User, live: LiveSpec) -> None:
        """Live sources make a worker read folders and connect to addresses: admins only, and
        watched folders must lie under a data root (``HISCI_DATA_ROOTS``)."""
        if not user.admin:
            raise InputError("live jobs are for admins: their sources are read on the worker", pointer="/live",
                             hint="ask an admin to submit it, or run it locally with hicli run --live")
        roots = tuple(r.resolve() for r in self.settings.data_roots)
        for name, folder in live.watch.items():
            path = Path(folder).expanduser().resolve()
            if not any(path == r or r in path.parents for r in roots):
                raise InputError(f"live.watch.{name}: {folder} is not under a data root", given=folder,
                                 pointer=f"/live/watch/{name}", allowed=[str(r) for r in roots] or None,
                                 hint="set HISCI_DATA_ROOTS to the detector folders the service may read")

    # -- jobs -----------------------------------------------------------------------------
    def submit(self, user: User, plugin_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Validate, write ``jobs/<id>/job.json`` and enqueue on cpu or gpu."""
        plugin = self.registry.get(plugin_id)
        if not plugin.runnable:
            raise ParamsError([Problem("this plugin has no runtime block, so it cannot be run",
                                       pointer="/runtime", given=plugin_id)], plugin_id=plugin_id)
        request, live_raw = split_live(request)
        live = live_spec_for(plugin, live_raw)
        if live:
            self._check_live(user, live)
        params, files = self._checked(user, plugin, request, live.names if live else ())
        redis = self._redis()
        where = route(plugin, redis)
        needs = requirement(plugin, params, sum(p.stat().st_size for ps in files.values() for p in ps))
        ok, why = fits(redis, where.queue, needs)
        record = new_record(plugin, params, files, owner=user.name)
        record.update(owner_id=user.id, queue=where.queue, fell_back=where.fell_back, routing=where.note,
                      timeout=plugin.runtime.timeout, retries=plugin.runtime.retries, attempts=0,
                      needs=needs, held=not ok, message=why)
        if live:  # a live job runs until stopped: no timeout, the idle timeout ends it
            record.update(live_spec=live.to_json(), timeout=-1)
        self.store.write(record)
        if ok:
            enqueue(redis, self.settings, record)
        return record

    def get(self, user: User, job_id: str) -> dict[str, Any]:
        record = self.store.read(job_id)
        if not (user.admin or owns(user, record)):
            raise JobNotFound(f"job '{job_id}' not found", given=job_id)
        return record

    def list_jobs(self, user: User, status: str | None = None, plugin: str | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        records = [r for r in self.store.all()
                   if (user.admin or owns(user, r))
                   and (status is None or r.get("status") == status)
                   and (plugin is None or r["plugin"]["id"] == plugin)]
        records.sort(key=lambda r: r.get("created", ""), reverse=True)
        return records[offset:offset + limit], len(records)

    def log(self, user: User, job_id: str, offset: int = 0) -> tuple[str, int]:
        self.get(user, job_id)
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

        self.get(user, job_id)
        return EventStream(self._redis(), job_id).read(after)

    def live_events(self, user: User, job_id: str, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        """A live job's published results and lag reports with ``n > after`` (from the job
        folder's ``live/events.jsonl``), and the ``n`` to ask after next time."""
        from ..live import EVENTS_FILE, read_events

        self.get(user, job_id)
        events = read_events(self.store.folder(job_id) / EVENTS_FILE, after, limit)
        return {"events": events, "next": events[-1]["n"] if events else after}

    def files(self, user: User, job_id: str) -> list[dict[str, Any]]:
        self.get(user, job_id)
        return self.store.files(job_id)

    def file_path(self, user: User, job_id: str, relative: str) -> Path:
        self.get(user, job_id)
        return self.store.file(job_id, relative)

    def figure(self, user: User, job_id: str, name: str) -> dict[str, Any]:
        name = name if name.endswith(".json") else f"{name}.json"
        return read_json(self.file_path(user, job_id, name))

    def cancel(self, user: User, job_id: str) -> dict[str, Any]:
        """Queued: removed from the queue. Running: a cancel flag that ctx.progress sees; the
        reaper stops the work horse after the grace period."""
        record = self.get(user, job_id)
        status = JobState(record["status"])
        if status.finished:
            return record
        redis = self._redis()
        redis.set(keys.cancel(job_id), time.time(), ex=7 * 86400)
        if status == JobState.QUEUED:
            try:
                Job.fetch(keys.rq_job_id(job_id, record.get("attempts", 0) + 1), connection=redis,
                          serializer=SERIALIZER).cancel()
            except NoSuchJobError:
                pass
            return self.store.update(job_id, status=JobState.CANCELLED.value, finished=now(),
                                     reason="cancelled before it started", held=False)
        return self.store.update(job_id, message="cancelling")

    def retry(self, user: User, job_id: str) -> dict[str, Any]:
        """A new job with the same plugin, params and inputs."""
        old = self.get(user, job_id)
        if not JobState(old["status"]).finished:
            raise ConflictError(f"job {job_id} is still {old['status']}", given=old["status"],
                             allowed=["succeeded", "failed", "cancelled"], hint="cancel it first")
        owner = User(old["owner"], user.admin, old.get("owner_id") or f"name:{old['owner']}")
        record = self.submit_params(owner, old["plugin"]["id"], old["params"])
        return self.store.update(record["id"], retry_of=job_id)

    def submit_params(self, user: User, plugin_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Submit already-resolved params (retry): inputs are the stored paths."""
        plugin = self.registry.get(plugin_id)
        params, files = self._checked(user, plugin, params)
        redis = self._redis()
        where = route(plugin, redis)
        record = new_record(plugin, params, files, owner=user.name)
        record.update(owner_id=user.id, queue=where.queue, fell_back=where.fell_back, routing=where.note,
                      timeout=plugin.runtime.timeout, retries=plugin.runtime.retries, attempts=0,
                      needs={}, held=False, message="")
        self.store.write(record)
        enqueue(redis, self.settings, record)
        return record

    def delete(self, user: User, job_id: str) -> None:
        record = self.get(user, job_id)
        if not JobState(record["status"]).finished:
            self.cancel(user, job_id)
        self.store.delete(job_id)

    # -- health ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        from .routing import live_workers

        report: dict[str, Any] = {"data_dir_writable": _writable(self.settings.data_dir)}
        try:
            redis = self._redis()
            redis.ping()
            report["redis"] = "ok"
            report["queues"] = {q: {"length": Queue(q, connection=redis, serializer=SERIALIZER).count,
                                    "workers": len(live_workers(redis, q))} for q in ("cpu", "gpu")}
        except Exception as exc:  # noqa: BLE001
            report["redis"] = f"unavailable: {exc}"
        report["ok"] = report["redis"] == "ok" and report["data_dir_writable"]
        report["plugins"] = len(self.registry)
        return report

    def _redis(self) -> Redis:
        if self.redis is None:
            raise InputError("the job service has no Redis", hint="start it with hicli serve or set HISCI_REDIS_URL")
        return self.redis


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".hisci-probe"
        probe.write_text("")
        probe.unlink()
        return True
    except OSError:
        return False
