"""Putting a job record onto its RQ queue."""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Dependency
from rq.serializers import JSONSerializer

from ..settings import Settings
from . import keys

#: The one function a hisci worker runs; a job naming anything else is refused (worker.py).
JOB_FUNCTION = "hisci.jobs.worker.execute"
#: Job data goes through JSON, never pickle: a process that reaches Redis cannot smuggle a
#: pickle payload (code that runs on load) into a worker.
SERIALIZER = JSONSerializer


def queue(redis: Redis, name: str) -> Queue:
    """The RQ queue ``name`` with hisci's serializer."""
    return Queue(name, connection=redis, serializer=SERIALIZER)


def enqueue(redis: Redis, settings: Settings, record: dict[str, Any], depends_on: list[str] | None = None,
            allow_failure: bool = False) -> str:
    """Enqueue one attempt of ``record`` on ``record["queue"]``; returns the RQ job id.

    ``depends_on``: RQ job ids that must end first (job groups); with ``allow_failure`` RQ
    runs it even when one of them failed in RQ's sense (hisci decides by the records)."""
    attempt = record.get("attempts", 0) + 1
    rq_id = keys.rq_job_id(record["id"], attempt)
    extra: dict[str, Any] = {}
    if depends_on:
        extra["depends_on"] = Dependency(jobs=depends_on, allow_failure=allow_failure)
    queue(redis, record["queue"]).enqueue(
        JOB_FUNCTION, record["id"], str(settings.data_dir.resolve()),
        job_id=rq_id, job_timeout=int(record.get("timeout") or 3600), result_ttl=600,
        failure_ttl=86400, description=f"{record['plugin']['id']} {record['id']}", **extra)
    return rq_id
