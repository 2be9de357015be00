"""The job layer: records (state machine), the index, RQ queues, workers, the reaper and
the service facade. Names are imported lazily, so ``hisci.jobs.record`` works without the
server extra."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "JobState": ".record", "JobRecord": ".record", "IllegalTransition": ".record",
    "JobBook": ".book", "JobFilter": ".book",
    "Reaper": ".reaper", "EmbeddedRedis": ".redis_server", "start_embedded_redis": ".redis_server",
    "JobService": ".service",
    "ChildSpec": ".groups", "GroupSpec": ".groups",
    "JobNotFound": ".store", "JobStore": ".store", "UploadStore": ".store", "UploadTooLarge": ".store",
    "User": ".users", "UserStore": ".users",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hisci.jobs' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
