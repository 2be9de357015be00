"""Workflows in the job service: a job group with one child per step on its plugin's queue
(RQ depends_on), outputs passed between steps, the owner's step cache, a failed step that
fails the workflow by name, retry of only that step, and cancel. Real Redis, RQ burst
workers in this process (work horses are forked)."""

from __future__ import annotations

import json

import pytest

from hisci import Registry
from hisci.jobs import JobFilter, JobService, User
from hisci.workflow.local import run_workflow

from .conftest_service import FIXTURE_PLUGINS, burst_worker, worker_env

pytestmark = pytest.mark.redis


def burst(settings) -> None:
    burst_worker(settings, ("cpu",))


@pytest.fixture
def wf_settings(service_settings, tmp_path, monkeypatch):
    """The service's settings plus a folder with a test workflow that has a failing step."""
    root = tmp_path / "workflows"
    folder = root / "sim_and_fail"
    folder.mkdir(parents=True)
    files = {
        "meta.json": {"name": "sim and fail", "intro": "a test workflow", "runtime": {"version": "1.0.0"}},
        "data.json": {"module": "t", "tool": "sim_and_fail", "params": {"textarea": {}, "config": {
            "data": {}, "dataArg": {}, "general": {}, "extra": {"fail": True}}}},
        "ui.json": {"data": {}, "dataArg": {}, "extra": {"fail": {"type": "switch"}}},
        "workflow.json": {"steps": {
            "sim": {"plugin": "nhit_simulate", "params": {"seconds": 0.02, "scale": 0.01, "seed": 5}},
            "broken": {"plugin": "failing_plugin", "params": {"fail": {"from": "extra.fail"}}},
            "trig": {"plugin": "nhit_trigger", "params": {"threshold": 5, "workers": 1},
                     "inputs": {"hits": {"step": "sim", "output": "stream"}}},
        }},
    }
    for name, doc in files.items():
        (folder / name).write_text(json.dumps(doc))
    settings = service_settings.model_copy(update={"plugin_path": (FIXTURE_PLUGINS, root)})
    for key, value in worker_env(settings).items():
        monkeypatch.setenv(key, value)
    return settings


@pytest.fixture
def wf_service(wf_settings) -> JobService:
    return JobService(wf_settings, Registry.discover(wf_settings))


def _children(service: JobService, user: User, job_id: str) -> dict[str, dict]:
    return {c["name"]: c for c in service.get(user, job_id)["children"]}


def test_nhit_pipeline_as_a_job_group_then_cached(wf_service, wf_settings, tmp_path) -> None:
    alice = User("alice")
    plugin = wf_service.registry.get("nhit_pipeline")
    parent = wf_service.submit(alice, "nhit_pipeline", plugin.example_request())
    assert parent["kind"] == "workflow" and parent["status"] == "queued"
    assert set(parent["graph"]) == {"simulate", "trigger", "check"}
    assert parent["graph"]["check"]["depends_on"] == ["trigger", "simulate"]
    kids = {c["name"]: c for c in parent["children"]}
    assert kids["trigger"]["depends_on"] == [kids["simulate"]["id"]]
    assert all(c["queue"] == "cpu" and c["kind"] == "step" for c in kids.values())
    burst(wf_settings)
    done = wf_service.get(alice, parent["id"])
    assert done["status"] == "succeeded", done["reason"]
    kids = _children(wf_service, alice, parent["id"])
    assert [kids[s]["status"] for s in ("simulate", "trigger", "check")] == ["succeeded"] * 3
    assert kids["trigger"]["started"] >= kids["simulate"]["finished"]
    events = (wf_service.store.folder(kids["trigger"]["id"]) / "events.dat").read_bytes()
    local = run_workflow(plugin, registry=wf_service.registry, output_dir=tmp_path / "local", example=True)
    assert events == (tmp_path / "local" / "events.dat").read_bytes()
    trig = wf_service.book.get(kids["trigger"]["id"]).data
    assert trig["inputs"][0]["path"].startswith(str(wf_service.store.folder(kids["simulate"]["id"])))
    report = json.loads((wf_service.store.folder(kids["check"]["id"]) / "result.json").read_text())
    assert report["compare"]["identical"] is True
    assert local.ok

    again = wf_service.submit(alice, "nhit_pipeline", plugin.example_request())
    burst(wf_settings)
    assert wf_service.get(alice, again["id"])["status"] == "succeeded"
    cached = _children(wf_service, alice, again["id"])
    for sid in ("simulate", "trigger", "check"):
        assert cached[sid]["status"] == "succeeded"
        record = wf_service.book.get(cached[sid]["id"]).data
        assert record["cached_from"]["job"] == kids[sid]["id"], sid
        assert record["message"].startswith("cached: outputs linked from job")
    assert (wf_service.store.folder(cached["trigger"]["id"]) / "events.dat").read_bytes() == events
    bob = User("bob")  # another owner does not use alice's cache
    theirs = wf_service.submit(bob, "nhit_pipeline", plugin.example_request())
    burst(wf_settings)
    first = _children(wf_service, bob, theirs["id"])["simulate"]
    assert wf_service.book.get(first["id"]).data.get("cached_from") is None


def test_failed_step_fails_the_workflow_and_retry_reruns_only_it(wf_service, wf_settings) -> None:
    alice = User("alice")
    parent = wf_service.submit(alice, "sim_and_fail", {})
    burst(wf_settings)
    failed = wf_service.get(alice, parent["id"])
    kids = _children(wf_service, alice, parent["id"])
    assert failed["status"] == "failed"
    assert failed["reason"].startswith(f"child broken ({kids['broken']['id']}) failed: ZeroDivisionError")
    assert kids["sim"]["status"] == "succeeded" and kids["trig"]["status"] == "succeeded"

    again = wf_service.retry(alice, parent["id"])
    assert again["status"] == "queued"
    burst(wf_settings)
    after = _children(wf_service, alice, parent["id"])
    assert after["broken"]["attempts"] == 2 and after["broken"]["status"] == "failed"
    assert after["sim"]["attempts"] == 1 and after["sim"]["finished"] == kids["sim"]["finished"]
    assert after["trig"]["attempts"] == 1


def test_cancel_workflow_cancels_its_steps(wf_service, wf_settings) -> None:
    alice = User("alice")
    parent = wf_service.submit(alice, "nhit_pipeline", {"extra": {"seconds": 0.02, "scale": 0.01}})
    cancelled = wf_service.cancel(alice, parent["id"])
    assert cancelled["status"] == "cancelled"
    assert {c["status"] for c in cancelled["children"]} == {"cancelled"}
    burst(wf_settings)
    assert all(c["started"] is None for c in wf_service.get(alice, parent["id"])["children"])


def test_bad_workflow_request_is_refused_before_anything_is_stored(wf_service) -> None:
    from hisci.errors import ParamsError

    with pytest.raises(ParamsError) as exc:
        wf_service.submit(User("alice"), "nhit_pipeline", {"extra": {"threshold": 0}})
    assert exc.value.problems[0].pointer == "/extra/threshold"
    assert wf_service.book.page(JobFilter(owner="alice"))[0] == []



def test_api_submits_a_workflow_and_refuses_bad_params(api, tokens) -> None:
    from .conftest_service import bearer

    ok = api.post("/api/v1/jobs", headers=bearer(tokens.alice),
                  json={"plugin": "nhit_pipeline", "request": {"extra": {"seconds": 0.02}}})
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert body["kind"] == "workflow" and {c["name"] for c in body["children"]} == {"simulate", "trigger", "check"}
    children = api.get(f"/api/v1/jobs/{body['id']}/children", headers=bearer(tokens.alice)).json()["children"]
    assert {c["name"] for c in children} == {"simulate", "trigger", "check"}
    bad = api.post("/api/v1/jobs", headers=bearer(tokens.alice),
                   json={"plugin": "nhit_pipeline", "request": {"extra": {"threshold": 0}}})
    assert bad.status_code == 422
    problem = bad.json()["error"]["problems"][0]
    assert problem["pointer"] == "/extra/threshold"
    other = api.get(f"/api/v1/jobs/{body['id']}", headers=bearer(tokens.bob))
    assert other.status_code == 404
