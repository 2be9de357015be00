"""Live jobs in the service: submitted through the API, run by real RQ workers, results read
back as they arrive, cancelled cleanly, and resumed after a worker is killed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest_service import bearer, wait_for

pytestmark = pytest.mark.redis


@pytest.fixture
def service_settings(service_settings, tmp_path):
    """The detector folders of these tests lie under a data root (HISCI_DATA_ROOTS)."""
    return service_settings.model_copy(update={"data_roots": (tmp_path,)})


def _items(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "items").glob("*.json"))]


def _published(api, job_id: str, headers: dict, route: str) -> list[dict]:
    """The ``type: live`` events of GET /jobs/{id}/live (events.jsonl) or /events (the Redis stream)."""
    return [e for e in api.get(f"/api/v1/jobs/{job_id}/{route}", headers=headers).json()["events"] if e["type"] == "live"]


def _submit(api, token: str, folder: Path, **live) -> str:
    body = {"plugin": "live_plugin", "request": {
        "extra": {"seconds": live.pop("seconds", 0.0)},
        "live": {"watch": {"frames": str(folder)}, "settle": 0, "poll": 0.05, **live}}}
    response = api.post("/api/v1/jobs", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["timeout"] == -1 and record["live_spec"]["watch"] == {"frames": str(folder)}
    return record["id"]


def test_live_job_publishes_as_files_arrive_and_cancel_writes_final_outputs(api, tokens, service_settings,
                                                                             start_worker, tmp_path):
    folder = tmp_path / "detector"
    folder.mkdir()
    start_worker()
    job_id = _submit(api, tokens.admin, folder)
    headers = bearer(tokens.admin)
    wait_for(lambda: api.get(f"/api/v1/jobs/{job_id}", headers=headers).json()["status"] == "running")
    for k in range(3):
        (folder / f"f{k}.bin").write_bytes(os.urandom(64))
    wait_for(lambda: len(_items(service_settings.data_dir / "jobs" / job_id)) == 3)
    # live_plugin writes an item's file just before it publishes the item
    events = wait_for(lambda: len(found := _published(api, job_id, headers, "live")) >= 3 and found, 5)
    assert [e["seq"] for e in events] == [1, 2, 3]
    later = api.get(f"/api/v1/jobs/{job_id}/live", params={"after": events[-1]["n"]}, headers=headers).json()
    assert all(e["n"] > events[-1]["n"] for e in later["events"])
    assert api.get(f"/api/v1/jobs/{job_id}/live", headers=bearer(tokens.bob)).status_code == 404

    # the Redis event stream carries them too (EventLog.emit forwards each just after events.jsonl)
    stream = wait_for(lambda: len(found := _published(api, job_id, headers, "events")) >= 3 and found, 5)
    assert [e["seq"] for e in stream] == [1, 2, 3]
    assert api.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers).status_code == 200
    record = wait_for(lambda: (r := api.get(f"/api/v1/jobs/{job_id}", headers=headers).json())["status"]
                      in ("cancelled", "failed", "succeeded") and r)
    assert record["status"] == "cancelled" and "final outputs written" in record["reason"]
    assert record["live"]["processed"] == 3 and record["live"]["stop"] == "cancelled"
    files = {f["path"] for f in api.get(f"/api/v1/jobs/{job_id}/files", headers=headers).json()["files"]}
    assert "all.json" in files and "result.json" in files


def test_worker_killed_mid_run_and_the_retry_resumes_without_duplicates(api, tokens, service_settings,
                                                                         start_worker, tmp_path):
    folder = tmp_path / "detector"
    folder.mkdir()
    for k in range(8):
        (folder / f"f{k}.bin").write_bytes(os.urandom(64))
    first = start_worker()
    job_id = _submit(api, tokens.admin, folder, seconds=0.3, idle=1.5)
    job_dir = service_settings.data_dir / "jobs" / job_id
    wait_for(lambda: len(_items(job_dir)) >= 3, timeout=60)
    first.kill()  # kill -9 the worker; its work horse dies with it
    checkpoint = json.loads((job_dir / "live" / "checkpoint.json").read_text())["sources"]["frames"]
    before = {i["seq"]: i["pid"] for i in _items(job_dir)}
    start_worker()  # the reaper sees the lost heartbeat and re-queues (runtime.retries = 1)
    headers = bearer(tokens.admin)
    record = wait_for(lambda: (r := api.get(f"/api/v1/jobs/{job_id}", headers=headers).json())["status"]
                      in ("succeeded", "failed") and r, timeout=90)
    assert record["status"] == "succeeded", record.get("reason")
    assert record["attempts"] == 2
    items = _items(job_dir)
    assert [i["name"] for i in items] == [f"f{k}.bin" for k in range(8)]
    assert all(items[s - 1]["pid"] == before[s] for s in range(1, checkpoint + 1))  # finished: not redone
    assert record["live"]["resumed_after"] == {"frames": checkpoint}
    assert record["live"]["processed"] == 8 - checkpoint
    summary = json.loads((job_dir / "result.json").read_text())
    assert summary["items"] == 8 and len(set(summary["names"])) == 8


def test_live_sources_are_for_admins_and_folders_under_a_data_root(api, tokens, tmp_path):
    body = {"plugin": "live_plugin", "request": {"live": {"watch": {"frames": str(tmp_path)}}}}
    refused = api.post("/api/v1/jobs", json=body, headers=bearer(tokens.alice))
    assert refused.status_code == 422 and "live jobs are for admins" in refused.text
    body["request"]["live"]["watch"]["frames"] = "/etc"
    refused = api.post("/api/v1/jobs", json=body, headers=bearer(tokens.admin))
    assert refused.status_code == 422 and "not under a data root" in refused.text
    assert refused.json()["error"]["problems"][0]["pointer"] == "/live/watch/frames"
    body["request"]["live"] = {"watch": {"frames": str(tmp_path)}, "until": 0}
    refused = api.post("/api/v1/jobs", json=body, headers=bearer(tokens.admin))
    assert refused.status_code == 422 and "live.until must be >= 1" in refused.text
