"""Worker liveness by heartbeat: ``hisci:worker:<name>`` is refreshed while a worker lives.

RQ's own registration outlives a ``kill -9`` by minutes (its worker TTL), and an idle RQ
worker beats only every ~400 s, so health and routing read these keys instead: a worker
counts as live while its key exists, i.e. for at most ``ttl`` seconds after its last beat.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from . import keys


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


class Heartbeat:
    """Keeps a Redis key alive while its owner lives: a daemon thread sets it, with ``ttl``
    seconds to live, every ``ttl / 4`` seconds until ``stop()``, which deletes it. The first
    beat is synchronous, so the key exists when ``start()`` returns (the reaper never sees a
    running job without its heartbeat). A Redis outage only skips beats: the first beat after
    Redis returns re-creates the key.

    The one heartbeat of jobs (``job_heartbeat``) and workers (``worker_heartbeat``).
    """

    def __init__(self, redis: Redis, key: str, ttl: float, value: Callable[[], Any], name: str) -> None:
        self.redis, self.key, self.ttl, self.value = redis, key, ttl, value
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def _beat(self) -> None:
        try:
            self.redis.set(self.key, self.value(), px=max(int(self.ttl * 1000), 1))
        except RedisError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            self._beat()

    def start(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and remove the key (a cleanly stopped owner is gone at once)."""
        self._stop.set()
        self._thread.join(2)
        try:
            self.redis.delete(self.key)
        except RedisError:
            pass


def job_heartbeat(redis: Redis, job_id: str, ttl: float) -> Heartbeat:
    """``hisci:heartbeat:<job>``, alive while the job runs (its value: the time of the beat)."""
    return Heartbeat(redis, keys.heartbeat(job_id), ttl, time.time, name=f"heartbeat-{job_id}")


def worker_heartbeat(redis: Redis, worker_name: str, queues: list[str], ttl: float, **info: Any) -> Heartbeat:
    """``hisci:worker:<name>`` of a worker serving ``queues``, with ``info`` (JSON)."""
    return Heartbeat(redis, keys.worker_alive(worker_name), ttl,
                     lambda: json.dumps({"queues": queues, "time": time.time(), **info}),
                     name=f"worker-beat-{worker_name}")
