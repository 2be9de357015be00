"""Which queue a job goes to, and whether a live worker can hold it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis import Redis

from ..plugin import Plugin
from . import keys
from .liveness import live_worker_names


@dataclass(frozen=True)
class Route:
    queue: str
    fell_back: bool
    note: str


def live_workers(redis: Redis, queue: str) -> list[str]:
    """Names of the workers on ``queue`` that are live by heartbeat (not by registration)."""
    return live_worker_names(redis, queue)


def route(plugin: Plugin, redis: Redis) -> Route:
    """``gpu: required`` -> gpu; ``optional`` -> gpu if a live worker listens there, else cpu;
    ``none`` -> cpu (ARCHITECTURE.md, "Jobs")."""
    runtime = plugin.runtime
    assert runtime is not None
    if runtime.gpu == "required" or (runtime.queue == "gpu" and runtime.gpu != "optional"):
        return Route("gpu", False, "gpu required")
    if runtime.gpu == "optional":
        if live_workers(redis, "gpu"):
            return Route("gpu", False, "gpu worker available")
        return Route("cpu", runtime.queue == "gpu", "no live gpu worker: running on cpu")
    return Route("cpu", False, "cpu")


def advertise_capacity(redis: Redis, worker_name: str, memory_gb: float, gpu_memory_gb: float,
                       queues: list[str], ttl: int = 60, **facts: object) -> None:
    """A worker's capacity: its host's memory budget (GB), GPU memory, queues, and ``facts``
    (host, cores, threads) for the workers page and placement."""
    redis.set(keys.worker_capacity(worker_name),
              json.dumps({"memory_gb": memory_gb, "gpu_memory_gb": gpu_memory_gb, "queues": queues, **facts}),
              ex=ttl)


def capacities(redis: Redis, queue: str) -> list[dict[str, Any]]:
    out = []
    for name in live_workers(redis, queue):
        raw = redis.get(keys.worker_capacity(name))
        if raw:
            out.append(json.loads(raw))
    return out


def requirement(plugin: Plugin, params: dict[str, Any], input_bytes: int) -> dict[str, float]:
    """runtime.memory_gb / gpu_memory_gb: numbers, or the name of a function in the plugin's
    entry module called as ``fn(params, input_bytes) -> {"memory_gb": .., "gpu_memory_gb": ..}``."""
    runtime = plugin.runtime
    assert runtime is not None
    needed: dict[str, float] = {}
    for key in ("memory_gb", "gpu_memory_gb"):
        value = getattr(runtime, key)
        if isinstance(value, (int, float)):
            needed[key] = float(value)
        elif isinstance(value, str):
            module = plugin.load_entry().__module__
            import importlib

            estimate = getattr(importlib.import_module(module), value)(params, input_bytes)
            if estimate.get(key) is not None:
                needed[key] = float(estimate[key])
    return needed


def fits(redis: Redis, queue: str, needed: dict[str, float],
         caps: list[dict[str, Any]] | None = None) -> tuple[bool, str]:
    """Whether some live worker on ``queue`` advertises enough memory for ``needed``
    (``caps``: :func:`capacities` of the queue when the caller has read them already)."""
    if not needed:
        return True, ""
    caps = capacities(redis, queue) if caps is None else caps
    for cap in caps:
        if all(cap.get(k, 0) >= v for k, v in needed.items()):
            return True, ""
    largest = {k: max((c.get(k, 0) for c in caps), default=0) for k in needed}
    wants = ", ".join(f"{k} {v:g}" for k, v in needed.items())
    has = ", ".join(f"{k} {v:g}" for k, v in largest.items())
    return False, f"waiting for a {queue} worker with {wants} (largest live worker: {has or 'none'})"
