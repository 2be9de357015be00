"""Keeps the records on disk and Redis in step: lost workers, cancels, Redis restarts, held jobs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job

from ..settings import Settings
from . import keys
from .book import JobBook
from .queueing import enqueue
from .record import JobRecord, JobState
from .routing import capacities, fits
from .store import JobNotFound

GROUP_KINDS = ("workflow", "parallel", "sweep")  # as hisci.jobs.groups (imported lazily there)

log = logging.getLogger("hisci.reaper")


class Reaper:
    """One sweep: ``sweep()``; in the background: ``start()`` / ``stop()``.

    - running, heartbeat missing for longer than the heartbeat TTL: "worker lost"
      (re-queued while the plugin's ``runtime.retries`` allow);
    - running with a cancel older than the grace period: the work horse is stopped;
    - queued but unknown to Redis (Redis restarted or was flushed): re-enqueued;
    - held (no live worker can hold it): enqueued once one can.
    """

    def __init__(self, settings: Settings, redis: Redis, book: JobBook | None = None) -> None:
        self.settings, self.redis = settings, redis
        self.book = book or JobBook(settings.data_dir, settings.database_url)
        self.store = self.book.store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_change: list = []  # callables(record) told of every change (job groups)

    def sweep(self) -> list[tuple[str, str]]:
        """Returns the (job id, action) pairs taken. Reads only queued/held/running rows."""
        actions = []
        try:
            actions += self._purge_deleted()
        except RedisError as exc:
            log.warning("reaper: Redis unavailable (%s); will retry", exc)
            return actions
        records = self.book.active()
        try:
            seen = self._look_up(records)
        except RedisError as exc:
            log.warning("reaper: Redis unavailable (%s); will retry", exc)
            return actions
        for record in records:
            try:
                action = self._check(record, seen.get(record.id, {}))
            except RedisError as exc:
                log.warning("reaper: Redis unavailable (%s); will retry", exc)
                return actions
            except JobNotFound:
                continue  # deleted meanwhile
            if action:
                actions.append((record.id, action))
                for hook in self.on_change:
                    hook(self.book.get(record.id) if action != "deleted" else record)
        return actions

    def _look_up(self, records: list[JobRecord]) -> dict[str, dict[str, Any]]:
        """What Redis holds for each active job, in one round trip (one call per job made a
        sweep over 1,000 queued jobs take 0.37 s): a running job's cancel time and heartbeat,
        whether a queued job's RQ job exists, and for a held job the live workers' capacities
        on its queue (read once per queue). Read after the index, so a heartbeat seen missing
        belongs to a job the index already said was running."""
        asked: list[tuple[str, str]] = []
        pipe = self.redis.pipeline(transaction=False)
        for record in records:
            if record.kind in GROUP_KINDS:
                continue
            if record.state == JobState.RUNNING:
                pipe.get(keys.cancel(record.id))
                pipe.exists(keys.heartbeat(record.id))
                asked += [(record.id, "cancel_at"), (record.id, "heartbeat")]
            elif record.state == JobState.QUEUED and not record.data.get("depends_on"):
                pipe.exists(Job.key_for(keys.rq_job_id(record.id, record.attempts + 1)))
                asked.append((record.id, "rq_job"))
        seen: dict[str, dict[str, Any]] = {}
        for (job_id, name), value in zip(asked, pipe.execute() if asked else [], strict=True):
            seen.setdefault(job_id, {})[name] = value
        held = [r for r in records if r.state == JobState.HELD and r.kind not in GROUP_KINDS]
        workers = {q: capacities(self.redis, q) for q in {r.data["queue"] for r in held}}
        for record in held:
            seen[record.id] = {"capacities": workers[record.data["queue"]]}
        return seen

    def _check(self, record: JobRecord, seen: dict[str, Any]) -> str | None:
        job_id = record.id
        if record.state == JobState.RUNNING:
            return self._check_running(record, seen)
        if record.kind in GROUP_KINDS:
            return self._refresh_group(record)
        if record.state == JobState.HELD:
            ok, why = fits(self.redis, record.data["queue"], record.data.get("needs") or {}, seen["capacities"])
            if ok:
                record = self.book.apply(job_id, lambda r: r.release())
                if record.state == JobState.QUEUED:
                    enqueue(self.redis, self.settings, record.data)
                return "released"
            if why != record.data.get("message"):
                self.book.note(job_id, message=why)
            return None
        if record.data.get("depends_on"):
            return None  # waits in RQ's deferred registry for the jobs it depends on
        if not seen["rq_job"] and _age(record.data) > 2.0:
            enqueue(self.redis, self.settings, record.data)
            self.book.note(job_id, message="re-enqueued: Redis had lost the queued job")
            return "requeued"
        return None

    def _check_running(self, record: JobRecord, seen: dict[str, Any]) -> str | None:
        """A job is lost once its heartbeat key has expired: at most ``heartbeat_ttl`` after the
        work horse's last beat, seen by the next sweep (so within TTL + one sweep interval)."""
        job_id = record.id
        if record.kind in GROUP_KINDS:
            return self._refresh_group(record)
        cancel_at = seen["cancel_at"]
        if seen["heartbeat"]:
            if cancel_at and time.time() - float(cancel_at) > self.settings.cancel_grace:
                self._stop_horse(record.data)
                self.book.apply(job_id, lambda r: r.state == JobState.RUNNING and r.finish(
                    JobState.CANCELLED, "cancelled by request (stopped after the grace period)"))
                return "stopped"
            return None
        if not self._redis_settled():
            return None  # Redis just restarted empty: live work horses re-create their beat
        if cancel_at:
            self.book.apply(job_id, lambda r: r.state == JobState.RUNNING
                            and r.finish(JobState.CANCELLED, "cancelled by request"))
            return "cancelled"
        from .worker import fail

        lost = fail(self.settings, self.redis, self.book, job_id, "worker lost")
        if lost is None:
            return None  # ended meanwhile
        return "retried" if lost.state == JobState.QUEUED else "lost"

    def _redis_settled(self) -> bool:
        """Whether Redis has been up for longer than two heartbeat periods (``ttl / 2``)."""
        uptime = float(self.redis.info("server").get("uptime_in_seconds", 1e9))
        return uptime >= max(1.0, self.settings.heartbeat_ttl / 2)

    def _purge_deleted(self) -> list[tuple[str, str]]:
        """Deleted jobs: a running one is stopped like a cancel; once its heartbeat is gone the
        folder is removed (so nothing the job writes while stopping can bring it back)."""
        actions = []
        for job_id in self.store.deleted_pending():
            if self.redis.exists(keys.heartbeat(job_id)):
                cancel_at = self.redis.get(keys.cancel(job_id))
                if cancel_at is None:
                    self.redis.set(keys.cancel(job_id), time.time(), ex=7 * 86400)
                elif time.time() - float(cancel_at) > self.settings.cancel_grace:
                    attempts = _attempts_on_disk(self.store, job_id)
                    self._stop_horse({"id": job_id, "attempts": attempts})
                continue
            if not self._redis_settled():
                continue
            self.store.purge(job_id)
            actions.append((job_id, "purged"))
        return actions

    def resume_interrupted(self) -> list[tuple[str, str]]:
        """At start: jobs failed by the last shutdown are queued again (a new attempt, the old
        one in ``history``) when THE retry rule (``JobRecord.may_retry``) allows it."""
        import sqlalchemy as sa

        from .index import jobs
        from .worker import INTERRUPTED, retry

        query = sa.select(jobs.c.id).where(jobs.c.state == JobState.FAILED.value, jobs.c.reason == INTERRUPTED)
        with self.book.engine.connect() as conn:
            ids = list(conn.execute(query).scalars())
        return [(job_id, "resumed") for job_id in ids if retry(self.settings, self.redis, self.book, job_id)]

    def _refresh_group(self, record: JobRecord) -> str | None:
        """A group's state is derived from its children (skips, stranded children)."""
        from .groups import refresh

        after = refresh(self.settings, self.redis, self.book, record.id)
        return f"group {after.state.value}" if after.state != record.state else None

    def _stop_horse(self, record: dict[str, Any]) -> None:
        try:
            send_stop_job_command(self.redis, keys.rq_job_id(record["id"], record.get("attempts", 1)))
        except (InvalidJobOperation, NoSuchJobError):
            pass

    def start(self) -> Reaper:
        def loop() -> None:
            while not self._stop.wait(self.settings.reaper_interval):
                try:
                    self.sweep()
                except Exception:  # noqa: BLE001 - the reaper must outlive any one bad record
                    log.exception("reaper sweep failed")

        self._thread = threading.Thread(target=loop, daemon=True, name="hisci-reaper")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)


def _attempts_on_disk(store: Any, job_id: str) -> int:
    from ..storage import read_json

    try:
        return int(read_json(store.folder(job_id) / "job.json").get("attempts", 1))
    except (OSError, ValueError):
        return 1


def _age(record: dict[str, Any]) -> float:
    from datetime import datetime

    try:
        return time.time() - datetime.fromisoformat(record["created"]).timestamp()
    except (KeyError, ValueError):
        return 1e9
