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
        self._missing_since: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> list[tuple[str, str]]:
        """Returns the (job id, action) pairs taken."""
        actions = []
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
        self._missing_since.pop(job_id, None)
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
        job_id = record["id"]
        cancel_at = self.redis.get(keys.cancel(job_id))
        if self.redis.exists(keys.heartbeat(job_id)):
            self._missing_since.pop(job_id, None)
            if cancel_at and time.time() - float(cancel_at) > self.settings.cancel_grace:
                self._stop_horse(record)
                self.store.update(job_id, status=JobState.CANCELLED.value, finished=now(),
                                  reason="cancelled by request (stopped after the grace period)")
                return "stopped"
            return None
        first = self._missing_since.setdefault(job_id, time.monotonic())
        if time.monotonic() - first < self.settings.heartbeat_ttl:
            return None
        self._missing_since.pop(job_id, None)
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
