"""A service that heals itself: supervision, shutdown, Redis outages, idempotent submits, deletes.

Real parts only: `hicli serve` processes with their embedded redis-server and `hicli worker`
children, killed with real signals; orphans are looked for in the process table (psutil).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from click.testing import CliRunner

from hicli.main import cli as hicli
from hisci import Registry, Settings
from hisci.jobs import EmbeddedRedis, JobService, User
from hisci.jobs.redis_server import free_port
from hisci.jobs.supervisor import Supervisor, read_status

from .conftest_service import FIXTURE_PLUGINS, bearer, wait_for

pytestmark = pytest.mark.redis
TTL, SWEEP = 2.0, 0.3


# -- hicli serve as a real process ----------------------------------------------------------------
class Serve:
    """`hicli serve` on a data dir with the fixture plugins and short heartbeat/sweep times."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HISCI_PLUGIN_PATH": str(FIXTURE_PLUGINS), "HISCI_NO_ENTRY_POINTS": "1",
               "HISCI_NO_BUILTINS": "1", "HISCI_HEARTBEAT_TTL": str(TTL), "HISCI_REAPER_INTERVAL": str(SWEEP),
               "HISCI_CANCEL_GRACE": "1.5"}
        for name in ("HISCI_REDIS_URL", "HISCI_URL", "HISCI_TOKEN", "HISCI_DATA_DIR"):
            env.pop(name, None)
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hicli.main", "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._workers() >= 1, timeout=90, interval=0.2)
        self.headers = bearer((data_dir / "admin.token").read_text().strip())

    def _workers(self) -> int:
        assert self.process.poll() is None, f"serve exited with {self.process.returncode}"
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=2).json()["queues"]["cpu"]["workers"]
        except (httpx.TransportError, KeyError, ValueError):
            return 0

    def health(self) -> dict:
        return httpx.get(f"{self.url}/api/v1/health", timeout=5).json()

    def submit(self, plugin: str, seconds: float) -> dict:
        response = httpx.post(f"{self.url}/api/v1/jobs", headers=self.headers, timeout=10,
                              json={"plugin": plugin, "request": {"extra": {"seconds": seconds}}})
        assert response.status_code == 201, response.text
        return response.json()

    def job(self, job_id: str) -> dict:
        return httpx.get(f"{self.url}/api/v1/jobs/{job_id}", headers=self.headers, timeout=5).json()

    def wait_job(self, job_id: str, *states: str, timeout: float = 30.0) -> dict:
        return wait_for(lambda: (r := self.job(job_id))["status"] in states and r, timeout=timeout)

    def child_pid(self, name: str) -> int:
        return self.health()["supervisor"]["children"][name]["pid"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture
def serve_dir(tmp_path: Path, isolated_env):
    started: list[Serve] = []

    def start() -> Serve:
        serve = Serve(tmp_path / "data", tmp_path / "serve.log")
        started.append(serve)
        return serve

    yield start
    for serve in started:
        serve.stop()


def test_serve_restarts_killed_worker_and_redis(serve_dir) -> None:
    serve = serve_dir()
    # kill -9 of the worker while a job runs: the job is retried (runtime.retries 1) on the restarted worker
    job = serve.submit("retry_plugin", 2.0)
    serve.wait_job(job["id"], "running")
    first_worker = serve.child_pid("worker-cpu-1")
    killed = time.monotonic()
    os.kill(first_worker, signal.SIGKILL)
    wait_for(lambda: "worker lost" in (r := serve.job(job["id"]))["message"] or r["attempts"] >= 2,
             timeout=15, interval=0.05)
    assert time.monotonic() - killed <= TTL + SWEEP + 1.5, "lost worker seen later than TTL + one sweep (+1.5 s slack)"
    done = serve.wait_job(job["id"], "succeeded", "failed", timeout=40)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    health = serve.health()
    worker = health["supervisor"]["children"]["worker-cpu-1"]
    assert worker["restarts"] == 1 and worker["pid"] != first_worker and worker["state"] == "running"
    assert any(e["child"] == "worker-cpu-1" and e["action"] == "restarted" for e in health["supervisor"]["events"])
    assert health["queues"]["cpu"]["workers"] == 1 and health["ok"] is True, health
    assert serve.wait_job(serve.submit("slow_plugin", 0.1)["id"], "succeeded")["attempts"] == 1

    # kill -9 of the embedded redis-server: restarted on the same port, records intact, submit works
    os.kill(serve.child_pid("redis"), signal.SIGKILL)
    wait_for(lambda: serve.health()["supervisor"]["children"]["redis"]["restarts"] == 1, timeout=15)
    assert serve.job(job["id"])["status"] == "succeeded"
    wait_for(lambda: serve.health()["queues"]["cpu"]["workers"] >= 1, timeout=30)
    again = serve.submit("slow_plugin", 0.1)
    assert serve.wait_job(again["id"], "succeeded", "failed", timeout=60)["status"] == "succeeded"
    assert serve.health()["ok"] is True


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_sigterm_interrupts_job_leaves_no_orphan_and_retries_on_restart(serve_dir) -> None:
    serve = serve_dir()
    plain = serve.submit("slow_plugin", 30)
    serve.wait_job(plain["id"], "running")
    retried = serve.submit("retry_plugin", 1.0)  # queued behind the running job: must survive too
    children = _descendants(serve.process.pid)
    assert len(children) >= 3  # redis-server, the worker, its work horse
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(30) == 0
    time.sleep(0.5)
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"orphans after SIGTERM: {[(p.pid, p.cmdline()) for p in alive]}"
    record = Settings(data_dir=serve.data_dir).data_dir / "jobs" / plain["id"] / "job.json"
    import json

    stored = json.loads(record.read_text())
    assert stored["status"] == "failed" and stored["reason"] == "interrupted by shutdown"
    assert read_status(serve.data_dir) is None  # the supervisor's status dies with serve

    # the running job of a retrying plugin comes back on the next start
    again = serve_dir()
    job = again.submit("retry_plugin", 3.0)
    again.wait_job(job["id"], "running")
    again.process.send_signal(signal.SIGTERM)
    assert again.process.wait(30) == 0
    third = serve_dir()
    done = third.wait_job(job["id"], "succeeded", "failed", timeout=40)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert third.job(plain["id"])["status"] == "failed"  # no retries declared: stays failed
    assert third.wait_job(retried["id"], "succeeded", timeout=40)["status"] == "succeeded"


# -- the supervisor on its own ----------------------------------------------------------------------
def test_supervisor_backoff_and_limit_per_minute(tmp_path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    supervisor = Supervisor(tmp_path, max_per_minute=2, backoff_base=0.2, interval=0.05)
    child = supervisor.add("worker-test", lambda: subprocess.Popen(sleeper))
    supervisor.start()
    try:
        pids = [child.process.pid]
        for restart in (1, 2):
            os.kill(pids[-1], signal.SIGKILL)
            killed = time.monotonic()
            wait_for(lambda r=restart: child.total_restarts == r and child.state == "running", timeout=10)
            pids.append(child.process.pid)
            # quick deaths back off: 0.2 s, then 0.4 s
            assert time.monotonic() - killed >= 0.2 * 2 ** (restart - 1) - 0.05
        os.kill(pids[-1], signal.SIGKILL)
        wait_for(lambda: child.state == "limited", timeout=5)
        time.sleep(0.5)
        assert child.total_restarts == 2 and child.process.poll() is not None
        status = read_status(tmp_path)
        assert status["children"]["worker-test"]["state"] == "limited"
        assert [e["action"] for e in status["events"]].count("restarted") == 2
    finally:
        supervisor.stop()
    assert child.state == "stopped" and read_status(tmp_path)["children"]["worker-test"]["state"] == "stopped"


# -- health by heartbeat ----------------------------------------------------------------------------
def test_health_counts_workers_by_heartbeat(api, tokens, start_worker) -> None:
    worker = start_worker()
    wait_for(lambda: api.get("/api/v1/health").json()["queues"]["cpu"]["workers"] == 1, timeout=30)
    worker.kill()
    killed = time.monotonic()
    wait_for(lambda: api.get("/api/v1/health").json()["queues"]["cpu"]["workers"] == 0, timeout=10)
    assert time.monotonic() - killed <= TTL + 0.5  # RQ's registration would linger for minutes
    response = api.post("/api/v1/jobs", json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}},
                        headers=bearer(tokens.alice))
    assert response.status_code == 201
    health = api.get("/api/v1/health").json()
    assert health["ok"] is False
    assert health["reasons"] == ["queue cpu has 1 waiting job(s) and no live worker"]
    start_worker()
    wait_for(lambda: api.get(f"/api/v1/jobs/{response.json()['id']}",
                             headers=bearer(tokens.alice)).json()["status"] == "succeeded", timeout=30)
    assert api.get("/api/v1/health").json()["ok"] is True


def test_default_lost_worker_detection_within_30_s() -> None:
    settings = Settings()
    assert settings.heartbeat_ttl + settings.reaper_interval <= 30


# -- Redis down: 503 and nothing written ------------------------------------------------------------
def test_redis_down_submit_is_503_and_writes_nothing(tmp_path, service_settings, tokens) -> None:
    from fastapi.testclient import TestClient
    from redis import Redis

    from hisci.api import create_app

    server = EmbeddedRedis(tmp_path / "own-redis").start()
    settings = service_settings.model_copy(update={"redis_url": server.url})
    service = JobService(settings, Registry.discover(settings), Redis.from_url(server.url))
    body = {"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}
    try:
        with TestClient(create_app(settings, service.registry, service)) as api:
            server.stop()
            key = {**bearer(tokens.alice), "Idempotency-Key": "retry-me-1"}
            response = api.post("/api/v1/jobs", json=body, headers=key)
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "unavailable" and "Redis" in error["message"]
            assert "nothing was stored" in error["problems"][0]["hint"]
            assert response.headers["Retry-After"] == "5"
            jobs_dir = settings.data_dir / "jobs"
            assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []
            assert api.get("/api/v1/health").json()["ok"] is False
            server.start()
            first = api.post("/api/v1/jobs", json=body, headers=key)
            assert first.status_code == 201, first.text
            second = api.post("/api/v1/jobs", json=body, headers=key)
            assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
            assert second.headers["Idempotent-Replayed"] == "true"
            assert [p.name for p in jobs_dir.iterdir()] == [first.json()["id"]]
    finally:
        server.stop()


# -- Idempotency-Key --------------------------------------------------------------------------------
def test_idempotency_key_returns_first_job(api, tokens, service, service_settings) -> None:
    body = {"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}
    alice = {**bearer(tokens.alice), "Idempotency-Key": "k-123"}
    first = api.post("/api/v1/jobs", json=body, headers=alice)
    again = api.post("/api/v1/jobs", json=body, headers=alice)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    bob = api.post("/api/v1/jobs", json=body, headers={**bearer(tokens.bob), "Idempotency-Key": "k-123"})
    assert bob.status_code == 201 and bob.json()["id"] != first.json()["id"]  # keys are per user
    other = api.post("/api/v1/jobs", json={**body, "request": {"extra": {"seconds": 0.2}}}, headers=alice)
    assert other.status_code == 422
    assert other.json()["error"]["problems"][0]["pointer"] == "/headers/Idempotency-Key"
    assert "different request" in other.json()["error"]["message"]
    bad = api.post("/api/v1/jobs", json=body, headers={**bearer(tokens.alice), "Idempotency-Key": "a b"})
    assert bad.status_code == 422 and "Idempotency-Key must be 1-255 visible ASCII" in bad.json()["error"]["message"]
    # concurrent repeats (a client retrying while the first request is in flight) make one job
    user = User("alice")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: service.submit_once(user, "slow_plugin", body["request"], "burst"),
                                range(8)))
    assert len({r["id"] for r, _ in results}) == 1 and sum(not replayed for _, replayed in results) == 1
    assert len(list((service_settings.data_dir / "jobs").iterdir())) == 3
    # a deleted first job frees the key
    api.delete(f"/api/v1/jobs/{first.json()['id']}", headers=bearer(tokens.alice))
    fresh = api.post("/api/v1/jobs", json=body, headers=alice)
    assert fresh.status_code == 201 and fresh.json()["id"] != first.json()["id"]


def test_hicli_submit_sends_an_idempotency_key(live_service, monkeypatch) -> None:
    monkeypatch.setenv("HISCI_URL", live_service.url)
    monkeypatch.setenv("HISCI_TOKEN", live_service.tokens.alice)
    monkeypatch.setenv("HISCI_PLUGIN_PATH", str(FIXTURE_PLUGINS))
    monkeypatch.setenv("HISCI_NO_ENTRY_POINTS", "1")
    runner = CliRunner()
    args = ["submit", "slow_plugin", "--set", "seconds=0.1", "--idempotency-key", "nightly-2026-12-03"]
    first, second = runner.invoke(hicli, args), runner.invoke(hicli, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first.stdout.strip() == second.stdout.strip()
    plain = [runner.invoke(hicli, args[:4]).stdout.strip() for _ in range(2)]
    assert plain[0] != plain[1]  # a new random key per invocation


# -- DELETE of a running job ------------------------------------------------------------------------
def test_delete_running_job_cancels_then_removes_it_for_good(api, tokens, start_worker, service_settings) -> None:
    start_worker()
    headers = bearer(tokens.alice)
    job_id = api.post("/api/v1/jobs", json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 30}}},
                      headers=headers).json()["id"]
    wait_for(lambda: api.get(f"/api/v1/jobs/{job_id}", headers=headers).json()["status"] == "running")
    folder = service_settings.data_dir / "jobs" / job_id
    assert api.delete(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 204
    assert api.get(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 404
    assert job_id not in [j["id"] for j in api.get("/api/v1/jobs", headers=headers).json()["jobs"]]
    wait_for(lambda: not folder.exists(), timeout=15)  # after the job stopped
    time.sleep(1.0)
    assert not folder.exists() and api.get(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 404
    assert not (service_settings.data_dir / "deleting" / job_id).exists()
    # the worker is free again: the next job runs
    after = api.post("/api/v1/jobs", json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}},
                     headers=headers).json()["id"]
    wait_for(lambda: api.get(f"/api/v1/jobs/{after}", headers=headers).json()["status"] == "succeeded")
