"""The job service on a real redis-server with real `hicli worker` processes."""

from __future__ import annotations

import time

import pytest

from hisci import Registry
from hisci.figures import load_figure
from hisci.jobs import EmbeddedRedis, JobService
from hisci.jobs.routing import capacities

from .conftest_service import bearer, wait_for

pytestmark = pytest.mark.redis


def submit(api, token, plugin, request=None):
    response = api.post("/api/v1/jobs", json={"plugin": plugin, "request": request or {}}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()


def status_of(api, token, job_id):
    return api.get(f"/api/v1/jobs/{job_id}", headers=bearer(token)).json()


def wait_status(api, token, job_id, wanted, timeout=30.0):
    wanted = {wanted} if isinstance(wanted, str) else set(wanted)
    return wait_for(lambda: (r := status_of(api, token, job_id))["status"] in wanted and r, timeout)


def example(plugin_id: str, registry) -> dict:
    return registry.get(plugin_id).example_request()


def test_submit_runs_to_success_with_result_files(api, tokens, start_worker, service) -> None:
    start_worker()
    record = submit(api, tokens.alice, "table_plot", example("table_plot", service.registry))
    assert record["status"] == "queued" and record["queue"] == "cpu" and record["owner"] == "alice"
    seen = set()
    done = wait_for(lambda: seen.add((r := status_of(api, tokens.alice, record["id"]))["status"])
                    or (r["status"] == "succeeded" and r), 30, 0.02)
    assert "queued" in seen and done["progress"] == 1.0 and done["host"]
    files = {f["path"] for f in api.get(f"/api/v1/jobs/{record['id']}/files", headers=bearer(tokens.alice)).json()["files"]}
    assert {"job.json", "result.json", "chart.json", "log.txt", "task.status.json"} <= files
    result = api.get(f"/api/v1/jobs/{record['id']}/files/result.json", headers=bearer(tokens.alice)).json()
    assert result["rows"] == 36
    figure = api.get(f"/api/v1/jobs/{record['id']}/figures/chart", headers=bearer(tokens.alice)).json()
    assert [t["name"] for t in figure["data"]] == ["control", "treated", "mutant"]
    # the worker emits the final state event just after the record says succeeded
    events = wait_for(lambda: (e := api.get(f"/api/v1/jobs/{record['id']}/events",
                                            headers=bearer(tokens.alice)).json()["events"])
                      and e[-1].get("status") == "succeeded" and e, 5)
    assert [e["type"] for e in events][0] == "state" and any(e["type"] == "progress" for e in events)
    assert events[-1] == {**events[-1], "type": "state", "status": "succeeded"}


def test_failing_plugin_keeps_traceback_and_can_be_retried(api, tokens, start_worker) -> None:
    start_worker()
    record = submit(api, tokens.alice, "failing_plugin")
    failed = wait_status(api, tokens.alice, record["id"], "failed")
    assert failed["reason"] == "ZeroDivisionError: deliberate failure for the tests"
    log = api.get(f"/api/v1/jobs/{record['id']}/log", headers=bearer(tokens.alice)).json()
    assert "Traceback (most recent call last)" in log["text"] and "ZeroDivisionError" in log["text"]
    tail = api.get(f"/api/v1/jobs/{record['id']}/log", params={"offset": log["offset"]}, headers=bearer(tokens.alice))
    assert tail.json()["text"] == ""
    retry = api.post(f"/api/v1/jobs/{record['id']}/retry", headers=bearer(tokens.alice))
    assert retry.status_code == 201
    again = wait_status(api, tokens.alice, retry.json()["id"], "failed")
    assert again["retry_of"] == record["id"] and again["params"] == failed["params"]


def test_cancel_queued_job_never_runs(api, tokens, start_worker) -> None:
    record = submit(api, tokens.alice, "slow_plugin", {"extra": {"seconds": 0.1}})
    cancelled = api.post(f"/api/v1/jobs/{record['id']}/cancel", headers=bearer(tokens.alice)).json()
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "cancelled before it started"
    start_worker()
    control = submit(api, tokens.alice, "slow_plugin", {"extra": {"seconds": 0.1}})
    wait_status(api, tokens.alice, control["id"], "succeeded")
    final = status_of(api, tokens.alice, record["id"])
    assert final["status"] == "cancelled" and final["started"] is None


def test_cancel_running_job_stops_at_next_progress(api, tokens, start_worker) -> None:
    start_worker()
    record = submit(api, tokens.alice, "slow_plugin", {"extra": {"seconds": 30}})
    wait_status(api, tokens.alice, record["id"], "running")
    asked = time.monotonic()
    api.post(f"/api/v1/jobs/{record['id']}/cancel", headers=bearer(tokens.alice))
    final = wait_status(api, tokens.alice, record["id"], "cancelled", timeout=10)
    assert time.monotonic() - asked < 5
    assert final["reason"] == "cancelled by request"


def test_cancel_job_that_ignores_progress_is_stopped_after_grace(api, tokens, start_worker, service_settings) -> None:
    start_worker()
    record = submit(api, tokens.alice, "stubborn_plugin", {"extra": {"seconds": 3.8}})
    wait_status(api, tokens.alice, record["id"], "running")
    api.post(f"/api/v1/jobs/{record['id']}/cancel", headers=bearer(tokens.alice))
    final = wait_status(api, tokens.alice, record["id"], ("cancelled", "failed", "succeeded"), timeout=15)
    assert final["status"] == "cancelled", final
    assert "stopped after the grace period" in final["reason"]


def test_timeout_from_runtime_block(api, tokens, start_worker) -> None:
    start_worker()
    record = submit(api, tokens.alice, "stubborn_plugin", {"extra": {"seconds": 20}})
    final = wait_status(api, tokens.alice, record["id"], ("failed", "succeeded"), timeout=20)
    assert final["status"] == "failed"
    assert final["reason"] == "timed out after 4 s (runtime.timeout)"


def test_killed_worker_marks_job_lost(api, tokens, start_worker, service_settings) -> None:
    worker = start_worker()
    record = submit(api, tokens.alice, "slow_plugin", {"extra": {"seconds": 30}})
    wait_status(api, tokens.alice, record["id"], "running")
    killed = time.monotonic()
    worker.kill()
    final = wait_status(api, tokens.alice, record["id"], ("failed", "succeeded"), timeout=20)
    assert final["status"] == "failed" and final["reason"] == "worker lost"
    elapsed = time.monotonic() - killed
    assert elapsed < 3 * service_settings.heartbeat_ttl + 2, elapsed


def test_gpu_optional_plugin_runs_on_cpu_without_gpu_worker(api, tokens, start_worker) -> None:
    start_worker()
    record = submit(api, tokens.alice, "gpu_optional_plugin", {"extra": {"seconds": 0.1}})
    assert record["queue"] == "cpu" and record["fell_back"] is True
    assert record["routing"] == "no live gpu worker: running on cpu"
    final = wait_status(api, tokens.alice, record["id"], "succeeded")
    assert final["ran_on_gpu"] is False


def test_job_no_worker_can_hold_waits_with_reason(api, tokens, start_worker, redis_conn) -> None:
    start_worker()
    wait_for(lambda: api.get("/api/v1/health").json()["queues"]["cpu"]["workers"] == 1)
    wait_for(lambda: capacities(redis_conn, "cpu"), timeout=10)  # advertised just after registering
    record = submit(api, tokens.alice, "big_memory_plugin", {"extra": {"seconds": 0.1}})
    assert record["status"] == "held" and record["held"] is True
    assert record["message"].startswith("waiting for a cpu worker with memory_gb 100000 (largest live worker: memory_gb ")
    time.sleep(1)
    assert status_of(api, tokens.alice, record["id"])["status"] == "held"


def test_redis_restart_keeps_records_and_service_recovers(tmp_path, service_settings, tokens, start_worker) -> None:
    from fastapi.testclient import TestClient
    from redis import Redis

    from hisci.api import create_app

    server = EmbeddedRedis(tmp_path / "own-redis").start()
    try:
        settings = service_settings.model_copy(update={"redis_url": server.url})
        service = JobService(settings, Registry.discover(settings), Redis.from_url(server.url))
        start_worker(settings=settings)
        with TestClient(create_app(settings, service.registry, service)) as api:
            queued = submit(api, tokens.alice, "slow_plugin", {"extra": {"seconds": 0.1}})
            wait_status(api, tokens.alice, queued["id"], "succeeded")
            server.stop()
            server.start()  # same port, empty: every queue and stream is gone
            assert status_of(api, tokens.alice, queued["id"])["status"] == "succeeded"
            again = submit(api, tokens.alice, "slow_plugin", {"extra": {"seconds": 0.1}})
            final = wait_status(api, tokens.alice, again["id"], "succeeded", timeout=60)
            assert final["attempts"] == 1
    finally:
        server.stop()


def test_queued_job_lost_by_redis_flush_is_reenqueued(api, tokens, start_worker, redis_conn) -> None:
    record = submit(api, tokens.alice, "slow_plugin", {"extra": {"seconds": 0.1}})
    redis_conn.flushall()
    time.sleep(2.5)  # the reaper waits 2 s before judging a fresh queued job
    start_worker()
    final = wait_status(api, tokens.alice, record["id"], "succeeded", timeout=30)
    assert final["message"] in ("done", "re-enqueued: Redis had lost the queued job")


def test_figure_of_job_matches_local_run(api, tokens, start_worker, service, tmp_path) -> None:
    from hisci import run_plugin

    start_worker()
    record = submit(api, tokens.alice, "table_plot", example("table_plot", service.registry))
    wait_status(api, tokens.alice, record["id"], "succeeded")
    local = run_plugin(service.registry.get("table_plot"), example=True, output_dir=tmp_path / "local")
    remote = service.store.folder(record["id"]) / "chart.json"
    for a, b in zip(load_figure(remote)["data"], load_figure(local.output_dir / "chart.json")["data"]):
        assert list(a["y"]) == list(b["y"])
