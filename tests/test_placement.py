"""Placement: chunks go only to workers whose host fits them, and a host's workers share its
memory budget (real redis-server, real `hicli worker` processes on two named 'hosts')."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from redis import Redis

from hisci import Registry, Settings
from hisci.jobs import EmbeddedRedis, JobService, User, placement
from hisci.jobs.queueing import queue
from hisci.jobs.reaper import Reaper
from hisci.jobs.routing import capacities, live_workers

from .conftest_service import FIXTURE_PLUGINS, wait_for, worker_env

pytestmark = pytest.mark.redis
#: host name -> (its memory budget in GB, how many workers run there)
HOSTS = {"small": (3.0, 2), "big": (8.0, 1)}
ESTIMATOR = '''

def memory(params, input_bytes):
    """The test's estimator: n / 1000 GB."""
    return {"memory_gb": int(params["extra"]["n"]) / 1000}
'''


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    for name in ("HISCI_PLUGIN_PATH", "HISCI_DATA_DIR", "HISCI_REDIS_URL", placement.HOST_MEMORY_ENV):
        monkeypatch.delenv(name, raising=False)
    plugins = tmp_path / "plugins"
    shutil.copytree(FIXTURE_PLUGINS / "chunk_sum", plugins / "chunk_sum")
    meta_path = plugins / "chunk_sum/meta.json"
    meta = json.loads(meta_path.read_text())
    meta["runtime"]["memory_gb"] = "memory"
    meta_path.write_text(json.dumps(meta))
    with open(plugins / "chunk_sum/plugin.py", "a") as fh:
        fh.write(ESTIMATOR)
    for module in [m for m in sys.modules if m.startswith("hisci_plugin_chunk_sum")]:
        monkeypatch.delitem(sys.modules, module)  # an earlier test imported the copy without `memory`
    server = EmbeddedRedis(tmp_path / "redis").start()
    settings = Settings(data_dir=tmp_path / "data", redis_url=server.url, plugin_path=(plugins,),
                        entry_points=False, heartbeat_ttl=2.0, reaper_interval=0.3)
    service = JobService(settings, Registry.discover(settings))
    procs = []
    for host, (budget, count) in HOSTS.items():
        env = {**worker_env(settings), "HISCI_WORKER_HOST": host, placement.HOST_MEMORY_ENV: str(budget)}
        procs += [subprocess.Popen([sys.executable, "-m", "hicli.main", "worker", "--queue", "cpu"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
    redis = Redis.from_url(server.url)
    reaper = Reaper(settings, redis, service.book).start()
    try:
        wait_for(lambda: len(capacities(redis, "cpu")) == 3 and len(live_workers(redis, "cpu")) == 3, timeout=60)
        yield {"service": service, "redis": redis}
    finally:
        reaper.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
        server.stop()


def _run(service: JobService, n: int, chunks: int, seconds: float) -> list[dict]:
    user = User("alice")
    parent = service.submit(user, "chunk_sum", {"extra": {"n": n, "seconds": seconds}}, chunks=chunks)
    done = wait_for(lambda: (r := service.get(user, parent["id"]))["status"] in ("succeeded", "failed") and r,
                    timeout=90)
    assert done["status"] == "succeeded", done.get("reason")
    return [service.book.get(c["id"]).data for c in done["children"] if c["kind"] == "chunk"]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_workers_advertise_host_cores_and_the_host_budget(hosts) -> None:
    caps = capacities(hosts["redis"], "cpu")
    assert sorted((c["host"], c["memory_gb"]) for c in caps) == [("big", 8.0), ("small", 3.0), ("small", 3.0)]
    assert all(c["cores"] >= 1 and c["threads"] >= 1 for c in caps)


def test_host_workers_share_the_host_memory_budget(hosts) -> None:
    # 2 GB a chunk: the small host (3 GB, two workers) runs one chunk at a time
    chunks = _run(hosts["service"], n=2000, chunks=6, seconds=0.6)
    assert all(c["needs"] == {"memory_gb": 2.0} for c in chunks)
    small = sorted((_ts(c["started"]), _ts(c["finished"])) for c in chunks if c["host"] == "small")
    assert small, "the small host ran no chunk"
    assert all(b[0] >= a[1] - 0.05 for a, b in zip(small, small[1:])), f"overlapping chunks on 'small': {small}"
    # a worker releases its reservation when its work horse has exited, which is just after the
    # chunk's record says succeeded: the parent may finish a moment before the last release
    redis = hosts["redis"]
    assert wait_for(lambda: placement.held_gb(redis, "small") == {} == placement.held_gb(redis, "big"), timeout=10)


def test_chunk_goes_only_to_a_host_that_fits_it(hosts) -> None:
    # 5 GB a chunk: only the big host (8 GB) fits it
    chunks = _run(hosts["service"], n=5000, chunks=3, seconds=0.1)
    assert {c["host"] for c in chunks} == {"big"}


def test_reserve_says_what_the_job_waits_for(hosts) -> None:
    redis = hosts["redis"]
    alive = next(iter(live_workers(redis, "cpu")))
    assert placement.reserve(redis, "h", 6, "job-1", 4, alive).ok
    second = placement.reserve(redis, "h", 6, "job-2", 3, alive)
    assert not second.ok and second.reason == ("waiting for memory: on host h running jobs hold 4 of 6 GB "
                                               "and this job needs 3 GB")
    too_big = placement.reserve(redis, "h", 6, "job-3", 7, alive)
    assert not too_big.ok and "host with 7 GB of memory (host h has 6 GB)" in too_big.reason
    # a reservation whose worker is no longer live is dropped, so a killed worker holds nothing
    assert placement.reserve(redis, "h", 6, "job-4", 2, "gone-worker").ok  # 4 + 2 <= 6
    fifth = placement.reserve(redis, "h", 6, "job-5", 1, alive)
    assert fifth.ok and fifth.held_gb == 4
    assert placement.held_gb(redis, "h") == {"job-1": 4, "job-5": 1}
    placement.release(redis, "h", "job-1")
    assert placement.held_gb(redis, "h") == {"job-5": 1}


def test_chunk_no_live_host_fits_is_held_until_one_does(hosts) -> None:
    # 12 GB a chunk: no live host (3 and 8 GB) fits it; the chunks go on held with the reason
    # instead of passing between workers, and a burst worker on the queue leaves at once
    service, redis = hosts["service"], hosts["redis"]
    user = User("alice")
    parent = service.submit(user, "chunk_sum", {"extra": {"n": 12000, "seconds": 0.1}}, chunks=2)
    ids = [c["id"] for c in service.get(user, parent["id"])["children"] if c["kind"] == "chunk"]
    held = wait_for(lambda: all(service.book.get(i).state.value == "held" for i in ids)
                    and [service.book.get(i) for i in ids], timeout=30)
    assert queue(redis, "cpu").count == 0  # off the queue: no worker passes them around
    assert all("memory_gb 12" in r.data["message"] and "largest live worker: memory_gb 8" in r.data["message"]
               for r in held), [r.data["message"] for r in held]
    env = {**worker_env(service.settings), "HISCI_WORKER_HOST": "small", placement.HOST_MEMORY_ENV: "3"}
    burst = subprocess.run([sys.executable, "-m", "hicli.main", "worker", "--queue", "cpu", "--burst"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert burst.returncode == 0, burst.stderr[-2000:]
    assert all(service.book.get(i).state.value == "held" for i in ids)
    # a worker on a host that fits starts: the reaper releases the chunks and the job ends
    env = {**worker_env(service.settings), "HISCI_WORKER_HOST": "huge", placement.HOST_MEMORY_ENV: "16"}
    huge = subprocess.Popen([sys.executable, "-m", "hicli.main", "worker", "--queue", "cpu"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = wait_for(lambda: (r := service.get(user, parent["id"]))["status"] in ("succeeded", "failed") and r,
                        timeout=90)
        assert done["status"] == "succeeded", done.get("reason")
        assert {service.book.get(i).data["host"] for i in ids} == {"huge"}
    finally:
        huge.terminate()
        huge.wait(15)
