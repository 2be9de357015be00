"""One event stream per job (a Redis stream), read by the API, hicli and the web app."""

from __future__ import annotations

import json
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

