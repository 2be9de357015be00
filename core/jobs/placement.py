"""Placement: a job starts only on a worker whose host fits it, within the host's memory budget.

Every worker advertises its host (``HISCI_WORKER_HOST``), cores, GPUs and the host's memory
budget (``HISCI_HOST_MEMORY_GB``, default the machine's memory); all workers that name one
host share that budget. Before a worker forks a job whose record says it ``needs``
``memory_gb``, it reserves that much on its host in Redis (one atomic script):

- more than the host's whole budget: the job goes back on its queue for a worker on a
  larger host, and its record says what it waits for;
- more than what the host's running jobs leave: back on the queue too, with the reason
  ("host H: running jobs hold 4 of 6 GB, this job needs 3 GB");
- else reserved until the job ends (a reservation whose worker is no longer live is dropped,
  so a killed worker never holds memory).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from redis import Redis

from . import keys

HOST_MEMORY_ENV = "HISCI_HOST_MEMORY_GB"
#: Seconds a worker waits after handing a job back, so a job that fits nowhere free is not
#: passed between workers in a tight loop.
BACKOFF_S = 0.5

_RESERVE = """
local held = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local entry = cjson.decode(fields[i + 1])
  if redis.call('EXISTS', ARGV[5] .. entry['worker']) == 0 and fields[i] ~= ARGV[1] then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif fields[i] ~= ARGV[1] then
    held = held + tonumber(entry['gb'])
  end
end
if held + tonumber(ARGV[2]) > tonumber(ARGV[3]) + 1e-9 then
  return {0, tostring(held)}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return {1, tostring(held)}
"""


@dataclass(frozen=True)
class Admission:
    """Whether a job may start here; ``reason`` says what it waits for when not."""

    ok: bool
    reason: str = ""
    held_gb: float = 0.0


def host_memory_gb(environ: dict[str, str] | None = None) -> float:
    """``HISCI_HOST_MEMORY_GB``, else the machine's memory (GB).

    Raises
    ------
    ValueError
        When the variable is set but is not a positive number.
    """
    from .worker import total_memory_gb

    env = os.environ if environ is None else environ
    text = (env.get(HOST_MEMORY_ENV) or "").strip()
    if not text:
        return round(total_memory_gb(), 3)
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ValueError(f"{HOST_MEMORY_ENV}={text!r}: give the host's memory budget in GB, e.g. 64")
    return value


def host_key(host: str) -> str:
    """The Redis hash of a host's memory reservations (job id -> {"gb", "worker"})."""
    return f"{keys.PREFIX}:host-memory:{host}"


def reserve(redis: Redis, host: str, budget_gb: float, job_id: str, need_gb: float, worker: str) -> Admission:
    """Reserve ``need_gb`` of ``host``'s ``budget_gb`` for ``job_id`` run by ``worker``."""
    if need_gb > budget_gb:
        return Admission(False, f"waiting for a worker on a host with {need_gb:g} GB of memory "
                                f"(host {host} has {budget_gb:g} GB)")
    entry = json.dumps({"gb": need_gb, "worker": worker})
    ok, held = redis.eval(_RESERVE, 1, host_key(host), job_id, str(need_gb), str(budget_gb), entry,
                          keys.worker_alive(""))
    held = float(held)
    if not int(ok):
        return Admission(False, f"waiting for memory: on host {host} running jobs hold {held:g} of "
                                f"{budget_gb:g} GB and this job needs {need_gb:g} GB", held)
    return Admission(True, "", held)


def release(redis: Redis, host: str, job_id: str) -> None:
    """Give back ``job_id``'s reservation on ``host``."""
    redis.hdel(host_key(host), job_id)


def held_gb(redis: Redis, host: str) -> dict[str, float]:
    """The reservations on ``host`` now (job id -> GB)."""
    return {k.decode(): json.loads(v)["gb"] for k, v in redis.hgetall(host_key(host)).items()}
