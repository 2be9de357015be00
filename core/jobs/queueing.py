"""Putting a job record onto its RQ queue."""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue

from ..settings import Settings
from . import keys


def enqueue(redis: Redis, settings: Settings, record: dict[str, Any]) -> str:
    """Enqueue one attempt of ``record`` on ``record["queue"]``; returns the RQ job id."""
    attempt = record.get("attempts", 0) + 1
    rq_id = keys.rq_job_id(record["id"], attempt)
    Queue(record["queue"], connection=redis).enqueue(
        "hisci.jobs.worker.execute", record["id"], str(settings.data_dir.resolve()),
        job_id=rq_id, job_timeout=int(record.get("timeout") or 3600), result_ttl=600,
        failure_ttl=86400, description=f"{record['plugin']['id']} {record['id']}")
    return rq_id
