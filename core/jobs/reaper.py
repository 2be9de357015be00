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
from .routing import fits
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
        self._missing_since: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_change: list = []  # callables(record) told of every change (job groups)

    def sweep(self) -> list[tuple[str, str]]:
        """Returns the (job id, action) pairs taken. Reads only queued/held/running rows."""
        actions = []
        active = self.book.active()
        live = {r.id for r in active}
        for job_id in list(self._missing_since):
            if job_id not in live:
                del self._missing_since[job_id]
        for record in active:
            try:
                action = self._check(record)
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

    def _check(self, record: JobRecord) -> str | None:
        job_id = record.id
        if record.state == JobState.RUNNING:
            return self._check_running(record)
        self._missing_since.pop(job_id, None)
        if record.kind in GROUP_KINDS:
            return self._refresh_group(record)
        if record.state == JobState.HELD:
            ok, why = fits(self.redis, record.data["queue"], record.data.get("needs") or {})
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
        rq_id = keys.rq_job_id(job_id, record.attempts + 1)
        if not Job.exists(rq_id, connection=self.redis) and _age(record.data) > 2.0:
            enqueue(self.redis, self.settings, record.data)
            self.book.note(job_id, message="re-enqueued: Redis had lost the queued job")
            return "requeued"
        return None

    def _check_running(self, record: JobRecord) -> str | None:
        job_id = record.id
        if record.kind in GROUP_KINDS:
            return self._refresh_group(record)
        cancel_at = self.redis.get(keys.cancel(job_id))
        if self.redis.exists(keys.heartbeat(job_id)):
            self._missing_since.pop(job_id, None)
            if cancel_at and time.time() - float(cancel_at) > self.settings.cancel_grace:
                self._stop_horse(record.data)
                self.book.apply(job_id, lambda r: r.state == JobState.RUNNING and r.finish(
                    JobState.CANCELLED, "cancelled by request (stopped after the grace period)"))
                return "stopped"
            return None
        first = self._missing_since.setdefault(job_id, time.monotonic())
        if time.monotonic() - first < self.settings.heartbeat_ttl:
            return None
        self._missing_since.pop(job_id, None)
        if cancel_at:
            self.book.apply(job_id, lambda r: r.state == JobState.RUNNING
                            and r.finish(JobState.CANCELLED, "cancelled by request"))
            return "cancelled"
        lost = self.book.apply(job_id, lambda r: r.state == JobState.RUNNING
                               and r.finish(JobState.FAILED, "worker lost"))
        if lost.may_retry():
            from .worker import retry

            if retry(self.settings, self.redis, self.book, job_id):
                return "retried"
        return "lost"

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


def _age(record: dict[str, Any]) -> float:
    from datetime import datetime

    try:
        return time.time() - datetime.fromisoformat(record["created"]).timestamp()
    except (KeyError, ValueError):
        return 1e9
