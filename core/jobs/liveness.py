"""Worker liveness by heartbeat: ``hisci:worker:<name>`` is refreshed while a worker lives.

RQ's own registration outlives a ``kill -9`` by minutes (its worker TTL), and an idle RQ
worker beats only every ~400 s, so health and routing read these keys instead: a worker
counts as live while its key exists, i.e. for at most ``ttl`` seconds after its last beat.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from . import keys


def beat(redis: Redis, worker_name: str, queues: list[str], ttl: float, **info: Any) -> None:
    """One heartbeat of ``worker_name`` serving ``queues`` (expires after ``ttl`` seconds)."""
    redis.set(keys.worker_alive(worker_name), json.dumps({"queues": queues, "time": time.time(), **info}),
              px=max(int(ttl * 1000), 1))


def live_worker_names(redis: Redis, queue: str | None = None) -> list[str]:
    """Names of the workers whose heartbeat key exists (on ``queue`` when given)."""
    names = []
    prefix = keys.worker_alive("")
    for key in redis.scan_iter(match=f"{prefix}*", count=500):
        raw = redis.get(key)
        if raw is None:
            continue
        try:
            queues = json.loads(raw).get("queues", [])
        except ValueError:
            continue
        if queue is None or queue in queues:
            name = key.decode() if isinstance(key, bytes) else key
            names.append(name[len(prefix):])
    return sorted(names)


class WorkerBeat:
    """A daemon thread that beats every ``ttl / 4`` seconds until ``stop()`` (a Redis outage
    only skips beats: the first beat after Redis returns re-creates the key)."""

    def __init__(self, redis: Redis, worker_name: str, queues: list[str], ttl: float, **info: Any) -> None:
        self.redis, self.name, self.queues, self.ttl, self.info = redis, worker_name, queues, ttl, info
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"worker-beat-{worker_name}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                beat(self.redis, self.name, self.queues, self.ttl, **self.info)
            except RedisError:
                pass
            self._stop.wait(self.ttl / 4)

    def start(self) -> WorkerBeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and remove the key (a cleanly stopped worker is gone at once)."""
        self._stop.set()
        self._thread.join(2)
        try:
            self.redis.delete(keys.worker_alive(self.name))
        except RedisError:
            pass
