"""One event stream per job (a Redis stream), read by the API, hicli and the web app."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from . import keys

STREAM_MAXLEN = 5000


class EventStream:
    """Appends progress/state events; a Redis outage never fails the job (the record on
    disk is the truth), it only drops live events."""

    def __init__(self, redis: Redis, job_id: str) -> None:
        self.redis = redis
        self.key = keys.events(job_id)

    def emit(self, kind: str, **fields: Any) -> None:
        try:
            self.redis.xadd(self.key, {"type": kind, "time": time.time(), "data": json.dumps(fields, default=str)},
                            maxlen=STREAM_MAXLEN, approximate=True)
            self.redis.expire(self.key, 7 * 86400)
        except RedisError:
            pass

    def progress(self, fraction: float, message: str) -> None:
        self.emit("progress", fraction=fraction, message=message)

    def read(self, after: str = "0-0", count: int = 500) -> list[dict[str, Any]]:
        entries = self.redis.xrange(self.key, min=f"({after}" if after != "0-0" else "-", count=count)
        out = []
        for entry_id, values in entries:
            decoded = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                       for k, v in values.items()}
            out.append({"id": entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
                        "type": decoded["type"], "time": float(decoded["time"]),
                        **json.loads(decoded["data"])})
        return out


class Heartbeat:
    """Keeps ``hisci:heartbeat:<job>`` alive while the job runs (a daemon thread)."""

    def __init__(self, redis: Redis, job_id: str, ttl: float) -> None:
        self.redis, self.key, self.ttl = redis, keys.heartbeat(job_id), ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{job_id}")

    def _beat(self) -> None:
        while not self._stop.is_set():
            try:
                self.redis.set(self.key, time.time(), px=int(self.ttl * 1000))
            except RedisError:
                pass  # Redis restarting: the next beat re-creates the key
            self._stop.wait(self.ttl / 4)

    def start(self) -> Heartbeat:
        """The first beat is synchronous, so the key exists before the job is marked running
        (the reaper never sees a running job without a heartbeat that was not lost)."""
        try:
            self.redis.set(self.key, time.time(), px=int(self.ttl * 1000))
        except RedisError:
            pass
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        try:
            self.redis.delete(self.key)
        except RedisError:
            pass
