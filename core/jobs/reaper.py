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

from ..record import JobState, now
from ..settings import Settings
from . import keys
from .queueing import enqueue
from .routing import fits
from .store import JobStore

log = logging.getLogger("hisci.reaper")


class Reaper:
    """One sweep: ``sweep()``; in the background: ``start()`` / ``stop()``.

    - running, heartbeat missing for longer than the heartbeat TTL: "worker lost"
      (re-queued while the plugin's ``runtime.retries`` allow);
    - running with a cancel older than the grace period: the work horse is stopped;
    - queued but unknown to Redis (Redis restarted or was flushed): re-enqueued;
    - held (no live worker can hold it): enqueued once one can.
    """

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings, self.redis = settings, redis
        self.store = JobStore(settings.data_dir)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> list[tuple[str, str]]:
        """Returns the (job id, action) pairs taken."""
        actions = []
        try:
            actions += self._purge_deleted()
        except RedisError as exc:
            log.warning("reaper: Redis unavailable (%s); will retry", exc)
            return actions
        for record in list(self.store.all()):
            try:
                action = self._check(record)
            except RedisError as exc:
                log.warning("reaper: Redis unavailable (%s); will retry", exc)
                return actions
            if action:
                actions.append((record["id"], action))
        return actions

    def _check(self, record: dict[str, Any]) -> str | None:
        status = record.get("status")
        job_id = record["id"]
        if status == JobState.RUNNING.value:
            return self._check_running(record)
        if status != JobState.QUEUED.value:
            return None
        if record.get("held"):
            ok, why = fits(self.redis, record["queue"], record.get("needs") or {})
            if ok:
                record = self.store.update(job_id, held=False, message="")
                enqueue(self.redis, self.settings, record)
                return "released"
            if why != record.get("message"):
                self.store.update(job_id, message=why)
            return None
        rq_id = keys.rq_job_id(job_id, record.get("attempts", 0) + 1)
        if not Job.exists(rq_id, connection=self.redis) and _age(record) > 2.0:
            enqueue(self.redis, self.settings, record)
            self.store.update(job_id, message="re-enqueued: Redis had lost the queued job")
            return "requeued"
        return None

    def _check_running(self, record: dict[str, Any]) -> str | None:
        """A job is lost once its heartbeat key has expired: at most ``heartbeat_ttl`` after the
        work horse's last beat, seen by the next sweep (so within TTL + one sweep interval)."""
        job_id = record["id"]
        cancel_at = self.redis.get(keys.cancel(job_id))
        if self.redis.exists(keys.heartbeat(job_id)):
            if cancel_at and time.time() - float(cancel_at) > self.settings.cancel_grace:
                self._stop_horse(record)
                self.store.update(job_id, status=JobState.CANCELLED.value, finished=now(),
                                  reason="cancelled by request (stopped after the grace period)")
                return "stopped"
            return None
        if not self._redis_settled():
            return None  # Redis just restarted empty: live work horses re-create their beat
        if cancel_at:
            self.store.update(job_id, status=JobState.CANCELLED.value, finished=now(),
                              reason="cancelled by request")
            return "cancelled"
        if record.get("attempts", 1) <= record.get("retries", 0):
            record = self.store.update(job_id, status=JobState.QUEUED.value,
                                       message="worker lost; retrying")
            enqueue(self.redis, self.settings, record)
            return "retried"
        self.store.update(job_id, status=JobState.FAILED.value, reason="worker lost", finished=now())
        return "lost"

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
        """At start: jobs failed by the last shutdown are queued again while their plugin's
        ``runtime.retries`` allow (the attempt count keeps the history)."""
        from .worker import INTERRUPTED

        actions = []
        for record in list(self.store.all()):
            if record.get("status") != JobState.FAILED.value or record.get("reason") != INTERRUPTED:
                continue
            if record.get("attempts", 1) <= record.get("retries", 0):
                record = self.store.update(record["id"], status=JobState.QUEUED.value, finished=None,
                                           message=f"retrying after: {INTERRUPTED}")
                enqueue(self.redis, self.settings, record)
                actions.append((record["id"], "resumed"))
        return actions

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


def _attempts_on_disk(store: JobStore, job_id: str) -> int:
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
