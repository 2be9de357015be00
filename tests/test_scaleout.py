"""Scale-out in the service: three `hicli worker` processes with different HISCI_WORKER_HOST
names, a redis-server that requires a password, one shared data dir.

Chunked ct_recon equals the single run, chunked nhit_trigger is byte-identical, a chunk
whose worker is killed is retried alone on another, cancel reaches every chunk, a sweep
makes one child per value.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from redis import Redis

from hisci import Registry, Settings, run_plugin
from hisci.jobs import JobService, User
from hisci.jobs.reaper import Reaper
from hisci.jobs.redis_server import free_port, redis_executable

from .conftest_service import FIXTURE_PLUGINS, bearer, wait_for, worker_env

pytestmark = pytest.mark.redis
HOSTS = ("host-a", "host-b", "host-c")


@pytest.fixture
def secured_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server that refuses clients without the password; yields its URL."""
    password, port = secrets.token_hex(12), free_port()
    proc = subprocess.Popen([redis_executable(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", password],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    wait_for(lambda: _pings(url), timeout=10)
    yield url
    proc.terminate()
    proc.wait(10)


def _pings(url: str) -> bool:
    try:
        return bool(Redis.from_url(url).ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.fixture
def cluster(tmp_path: Path, secured_redis: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """Settings, a service, a reaper and three worker processes on three 'hosts'."""
    for name in ("HISCI_PLUGIN_PATH", "HISCI_DATA_DIR", "HISCI_REDIS_URL", "HISCI_URL", "HISCI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(data_dir=tmp_path / "shared-data", redis_url=secured_redis, plugin_path=(FIXTURE_PLUGINS,),
                        entry_points=False, heartbeat_ttl=2.0, reaper_interval=0.3, cancel_grace=1.5,
                        data_roots=(tmp_path,))  # admins may name files under tmp_path (the N-Hit stream)
    nopass = secured_redis.replace(secured_redis.split("@")[0] + "@", "redis://")
    with pytest.raises(Exception, match="(?i)auth"):
        Redis.from_url(nopass).ping()  # the server really wants the password
    service = JobService(settings, Registry.discover(settings))
    workers = {}
    for host in HOSTS:
        env = {**worker_env(settings), "HISCI_WORKER_HOST": host, "HISCI_DATA_ROOTS": str(tmp_path)}
        workers[host] = subprocess.Popen([sys.executable, "-m", "hicli.main", "worker", "--queue", "cpu"],
                                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    redis = Redis.from_url(secured_redis)
    reaper = Reaper(settings, redis, service.book)
    reaper.start()
    from hisci.jobs.routing import live_workers

    wait_for(lambda: len(live_workers(redis, "cpu")) == 3, timeout=60)
    yield {"settings": settings, "service": service, "workers": workers, "redis": redis}
    reaper.stop()
    for proc in workers.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in workers.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _finished(service: JobService, user: User, job_id: str) -> dict | None:
    record = service.get(user, job_id)
    return record if record["status"] in ("succeeded", "failed", "cancelled") else None


def _wait_group(service: JobService, user: User, job_id: str, timeout: float) -> dict:
    try:
        return wait_for(lambda: _finished(service, user, job_id), timeout=timeout)
    except AssertionError:
        record = service.get(user, job_id)
        brief = [{k: c.get(k) for k in ("name", "status", "reason", "host", "attempts", "started", "finished")}
                 for c in record.get("children", [])]
        raise AssertionError(f"group {job_id} still {record['status']}: {json.dumps(brief, indent=1)}") from None


def _merge_folder(service: JobService, parent: dict) -> Path:
    merge = next(c for c in parent["children"] if c["kind"] == "merge")
    return service.store.folder(merge["id"])


def test_chunked_ct_recon_on_three_hosts_equals_single_run(cluster, tmp_path: Path) -> None:
    service, alice = cluster["service"], User("alice")
    plugin = service.registry.get("ct_recon")
    request = plugin.example_request()
    parent = service.submit(alice, "ct_recon", request, chunks=3)
    assert parent["kind"] == "parallel" and parent["chunks"] == 3
    assert [c["name"] for c in parent["children"]] == ["chunk-0", "chunk-1", "chunk-2", "merge"]
    done = _wait_group(service, alice, parent["id"], 240)
    assert done["status"] == "succeeded", done.get("reason")
    assert done["progress"] == 1.0
    chunks = [c for c in done["children"] if c["kind"] == "chunk"]
    assert all(c["host"] in HOSTS and c["worker"] for c in chunks)
    single = run_plugin(plugin, example=True, output_dir=tmp_path / "single")
    with h5py.File(single.output_dir / "recon.h5") as a, h5py.File(_merge_folder(service, done) / "recon.h5") as b:
        va, vb = a["exchange/data"][()], b["exchange/data"][()]
    assert va.shape == vb.shape and np.abs(va - vb).max() <= 1e-6 * (va.max() - va.min())
    summary = json.loads((_merge_folder(service, done) / "result.json").read_text())
    assert summary["chunks"] == 3 and set(summary["chunk_hosts"]) <= set(HOSTS)


def test_chunked_nhit_trigger_is_byte_identical(cluster, tmp_path: Path) -> None:
    service, alice = cluster["service"], User("admin", admin=True)  # an admin may name files on the shared disk
    run_plugin(service.registry.get("nhit_simulate"), {"extra": {"seconds": 0.1, "scale": 0.1, "seed": 5}},
                     output_dir=tmp_path / "sim")
    hits = next((tmp_path / "sim").glob("*.hits"))
    request = {"extra": {"threshold": 10, "workers": 1},
               "data": {"hits": {"value": str(hits), "link": str(hits)}}}
    single = run_plugin(service.registry.get("nhit_trigger"), request, output_dir=tmp_path / "single")
    parent = service.submit(alice, "nhit_trigger", request, chunks=4)
    done = _wait_group(service, alice, parent["id"], 240)
    assert done["status"] == "succeeded", done.get("reason")
    events = (_merge_folder(service, done) / "events.dat").read_bytes()
    assert len(events) > 1000 and events == (single.output_dir / "events.dat").read_bytes()


def test_killed_chunk_worker_is_retried_alone_on_another_host(cluster) -> None:
    service, alice, workers = cluster["service"], User("alice"), cluster["workers"]
    parent = service.submit(alice, "chunk_sum", {"extra": {"n": 30, "seconds": 5}}, chunks=3)

    def all_running() -> list | None:
        kids = service.get(alice, parent["id"])["children"][:3]
        return kids if all(c["status"] == "running" and c["host"] for c in kids) else None

    chunks = wait_for(all_running, timeout=60)
    victim = chunks[0]
    workers[victim["host"]].kill()
    done = _wait_group(service, alice, parent["id"], 120)
    assert done["status"] == "succeeded", done.get("reason")
    kids = {c["name"]: c for c in done["children"]}
    assert kids["chunk-0"]["attempts"] == 2 and kids["chunk-0"]["host"] != victim["host"]
    assert kids["chunk-1"]["attempts"] == 1 and kids["chunk-2"]["attempts"] == 1
    result = json.loads((_merge_folder(service, done) / "result.json").read_text())
    assert result["sum"] == sum(k * k for k in range(30))


def test_cancel_reaches_every_chunk(cluster) -> None:
    service, alice = cluster["service"], User("alice")
    parent = service.submit(alice, "chunk_sum", {"extra": {"n": 30, "seconds": 120}}, chunks=3)
    wait_for(lambda: all(c["status"] == "running" for c in service.get(alice, parent["id"])["children"][:3]),
             timeout=60)
    service.cancel(alice, parent["id"])
    done = _wait_group(service, alice, parent["id"], 30)
    assert done["status"] == "cancelled"
    for child in done["children"]:
        assert child["status"] == "cancelled", child
    for child in done["children"][:3]:
        assert "cancelled" in (service.store.folder(child["id"]) / "log.txt").read_text()


def test_sweep_children_through_the_api(cluster, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from hisci.api import create_app

    service = cluster["service"]
    token = service.users.add("carol")
    app = create_app(cluster["settings"], service.registry, service)
    with TestClient(app) as api:
        bad = api.post("/api/v1/jobs", headers=bearer(token),
                       json={"plugin": "chunk_sum", "request": {}, "sweep": {"extra.scale": [1, 20]}})
        assert bad.status_code == 422 and "/extra/scale" in bad.text
        made = api.post("/api/v1/jobs", headers=bearer(token),
                        json={"plugin": "chunk_sum", "request": {"extra": {"n": 10}},
                              "sweep": {"extra.scale": "1:3:1"}})
        assert made.status_code == 201, made.text
        parent = made.json()
        assert parent["kind"] == "sweep" and parent["sweep"] == {"key": "extra.scale", "values": [1, 2, 3]}
        done = wait_for(lambda: (lambda r: r if r["status"] == "succeeded" else None)(
            api.get(f"/api/v1/jobs/{parent['id']}", headers=bearer(token)).json()), timeout=120)
        children = sorted(done["children"], key=lambda c: c["name"])
        assert [c["name"] for c in children] == ["extra.scale=1", "extra.scale=2", "extra.scale=3"]
        for scale, child in zip((1, 2, 3), children, strict=True):
            record = api.get(f"/api/v1/jobs/{child['id']}", headers=bearer(token)).json()
            assert record["worker"] and record["host"] in HOSTS and record["sweep_value"] == scale
            result = json.loads((service.store.folder(child["id"]) / "result.json").read_text())
            assert result["sum"] == scale * sum(k * k for k in range(10))


def test_worker_token_receives_redis_credentials_and_nothing_else(secured_redis, tmp_path, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from hisci.api import create_app

    for name in ("HISCI_PLUGIN_PATH", "HISCI_DATA_DIR", "HISCI_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(data_dir=tmp_path / "data", redis_url=secured_redis, plugin_path=(FIXTURE_PLUGINS,),
                        entry_points=False)
    service = JobService(settings, Registry.discover(settings))
    worker_token, user_token = service.users.add("node7", worker=True), service.users.add("dave")
    assert [u.worker for u in service.users.list()] == [False, True]  # dave, node7
    facts = {"host": "node7", "cores": 4, "memory_gb": 16.0, "gpus": 0, "queues": ["cpu"]}
    with TestClient(create_app(settings, service.registry, service)) as api:
        ok = api.post("/api/v1/workers/register", headers=bearer(worker_token), json=facts)
        assert ok.status_code == 200, ok.text
        assert ok.json()["redis_url"] == secured_redis and ok.json()["data_dir"] == str(settings.data_dir.resolve())
        refused = api.post("/api/v1/workers/register", headers=bearer(user_token), json=facts)
        assert refused.status_code == 403 and "worker token" in refused.text and "redis" not in refused.text
        assert api.get("/api/v1/jobs", headers=bearer(worker_token)).status_code == 403
        bad = api.post("/api/v1/workers/register", headers=bearer(worker_token), json={**facts, "queues": ["x"]})
        assert bad.status_code == 422
    assert json.loads(Redis.from_url(secured_redis).get("hisci:registered:node7"))["cores"] == 4
