"""JobService: the one facade the API, hicli serve and the web app call."""

from __future__ import annotations

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

from ..errors import HisciError, InputError, ParamsError, Problem
from ..inputs import InputAccess, pin_inputs, resolve_inputs
from ..record import JobState, new_record, now
from ..registry import Registry
from ..requests import canonical_request
from ..settings import Settings
from ..storage import read_json
from . import keys
from .idempotency import IdempotencyStore, fingerprint
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

    def _checked(self, user: User, plugin: Any, request: Any) -> tuple[dict[str, Any], dict[str, list[Path]]]:
        """Normalise once (core.requests), validate, confine and pin the inputs."""
        params = plugin.validate_request(canonical_request(request, plugin.id))
        files = resolve_inputs(plugin, params, access=self.access(user))
        return pin_inputs(params, files), files

    # -- jobs -----------------------------------------------------------------------------
    def submit(self, user: User, plugin_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Validate, write ``jobs/<id>/job.json`` and enqueue on cpu or gpu."""
        plugin = self.registry.get(plugin_id)
        if not plugin.runnable:
            raise ParamsError([Problem("this plugin has no runtime block, so it cannot be run",
                                       pointer="/runtime", given=plugin_id)], plugin_id=plugin_id)
        params, files = self._checked(user, plugin, request)
        redis = self._redis()
        needs = requirement(plugin, params, sum(p.stat().st_size for ps in files.values() for p in ps))
        with redis_or_503():
            where = route(plugin, redis)
            ok, why = fits(redis, where.queue, needs)
        record = new_record(plugin, params, files, owner=user.name)
        record.update(owner_id=user.id, queue=where.queue, fell_back=where.fell_back, routing=where.note,
                      timeout=plugin.runtime.timeout, retries=plugin.runtime.retries, attempts=0,
                      needs=needs, held=not ok, message=why)
        self._write_and_enqueue(redis, record, enqueue_now=ok)
        return record

    def submit_once(self, user: User, plugin_id: str, request: dict[str, Any],
                    key: str | None) -> tuple[dict[str, Any], bool]:
        """``submit`` behind an ``Idempotency-Key``: ``(record, replayed)``; a repeated key of
        the same user returns the first job (``replayed`` True) instead of a new one."""
        if key is None:
            return self.submit(user, plugin_id, request), False

        def existing(job_id: str) -> dict[str, Any] | None:
            try:
                return self.get(user, job_id)
            except JobNotFound:
                return None

        return self.idempotency.once(user.name, key, fingerprint(plugin_id, request),
                                     lambda: self.submit(user, plugin_id, request), existing)

    def _write_and_enqueue(self, redis: Redis, record: dict[str, Any], enqueue_now: bool = True) -> None:
        """Write the record, then enqueue; when Redis refuses, the record is removed again and
        the caller gets 503: a failed submit leaves nothing behind that could run later."""
        self.store.write(record)
        if not enqueue_now:
            return
        try:
            enqueue(redis, self.settings, record)
        except RedisError as exc:
            self.store.delete(record["id"])
            raise RedisUnavailable.from_error(exc) from None

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
        with redis_or_503():
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
            raise InputError(f"job {job_id} is still {old['status']}", given=old["status"],
                             allowed=["succeeded", "failed", "cancelled"], hint="cancel it first")
        owner = User(old["owner"], user.admin, old.get("owner_id") or f"name:{old['owner']}")
        record = self.submit_params(owner, old["plugin"]["id"], old["params"])
        return self.store.update(record["id"], retry_of=job_id)

    def submit_params(self, user: User, plugin_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Submit already-resolved params (retry): inputs are the stored paths."""
        plugin = self.registry.get(plugin_id)
        params, files = self._checked(user, plugin, params)
        redis = self._redis()
        with redis_or_503():
            where = route(plugin, redis)
        record = new_record(plugin, params, files, owner=user.name)
        record.update(owner_id=user.id, queue=where.queue, fell_back=where.fell_back, routing=where.note,
                      timeout=plugin.runtime.timeout, retries=plugin.runtime.retries, attempts=0,
                      needs={}, held=False, message="")
        self._write_and_enqueue(redis, record)
        return record

    def delete(self, user: User, job_id: str) -> None:
        """A finished job's folder goes at once. An unfinished one is hidden at once (404 to
        every reader, whatever the job still writes), cancelled, and its folder removed by the
        reaper once the job has stopped (no heartbeat): it never reappears."""
        record = self.get(user, job_id)
        if JobState(record["status"]).finished:
            self.store.delete(job_id)
            return
        self.store.mark_deleted(job_id)
        try:
            redis = self._redis()
            redis.set(keys.cancel(job_id), time.time(), ex=7 * 86400)
            Job.fetch(keys.rq_job_id(job_id, record.get("attempts", 0) + 1), connection=redis,
                      serializer=SERIALIZER).cancel()
        except (NoSuchJobError, InvalidJobOperation, RedisError):
            pass  # not on a queue (running, held) or Redis away: the reaper finishes the job off

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
            report["redis"] = f"unavailable: {exc}"
            reasons.append(f"redis unavailable: {exc}")
        if not report["data_dir_writable"]:
            reasons.append(f"data dir {self.settings.data_dir} is not writable")
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
            raise InputError("the job service has no Redis", hint="start it with hicli serve or set HISCI_REDIS_URL")
        return self.redis


class RedisUnavailable(HisciError):
    """Redis (the queue) cannot be reached: HTTP 503, and nothing was written."""

    code = "unavailable"

    @classmethod
    def from_error(cls, exc: Exception) -> RedisUnavailable:
        return cls(f"the job queue (Redis) is unavailable: {exc}",
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
