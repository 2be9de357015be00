"""Job groups (workflows, parallel chunks, sweeps): a real Redis, real RQ burst workers in
this process (work horses are forked), table_plot and failing children."""

from __future__ import annotations

import time

import pytest

from hisci.jobs import ChildSpec, GroupSpec, JobService, User
from hisci.jobs.events import EventStream
from hisci.jobs.queueing import queue
from hisci.jobs.reaper import Reaper

from .conftest_service import bearer, burst_worker, worker_env

pytestmark = pytest.mark.redis


@pytest.fixture
def env_for_workers(service_settings, monkeypatch):
    """The work horses read their settings from the environment, as `hicli worker` does."""
    for key, value in worker_env(service_settings).items():
        monkeypatch.setenv(key, value)
    return service_settings


def burst(settings, queues=("cpu",)) -> None:
    """Run every job on the queues (and any they release) in an RQ burst worker, then return."""
    burst_worker(settings, queues)


def table_child(service: JobService, name: str, **kw) -> ChildSpec:
    return ChildSpec(name=name, plugin="table_plot", request=service.registry.get("table_plot").example_request(), **kw)


def test_group_runs_children_then_finish_and_derives_parent(service, env_for_workers) -> None:
    alice = User("alice")
    parent = service.submit_group(alice, GroupSpec(kind="parallel", plugin="table_plot"),
                                  [table_child(service, f"chunk-{i}", kind="chunk") for i in range(3)],
                                  finish=table_child(service, "merge", kind="merge"))
    assert parent["status"] == "queued" and parent["kind"] == "parallel"
    assert [c["name"] for c in parent["children"]] == ["chunk-0", "chunk-1", "chunk-2", "merge"]
    merge = parent["children"][-1]
    assert set(merge["depends_on"]) == {c["id"] for c in parent["children"][:3]}
    assert service.book.page(service_filter(alice))[0][0]["id"] == parent["id"]  # children are not top-level
    burst(env_for_workers)
    done = service.get(alice, parent["id"])
    assert done["status"] == "succeeded" and done["progress"] == 1.0 and done["reason"] is None
    assert done["counts"] == {"done": 4, "total": 4, "failed": 0}
    children = {c["name"]: c for c in done["children"]}
    assert all(c["status"] == "succeeded" and c["worker"] and c["host"] for c in children.values())
    last_chunk_end = max(children[f"chunk-{i}"]["finished"] for i in range(3))
    assert children["merge"]["started"] >= last_chunk_end  # depends_on held it back
    rows = (service.store.folder(children["chunk-1"]["id"]) / "result.json").read_text()
    assert '"rows": 36' in rows


def service_filter(user):
    from hisci.jobs import JobFilter

    return JobFilter(owner=user.name)


def test_failed_child_fails_parent_skips_finish_and_retry_reruns_only_failed(service, env_for_workers) -> None:
    alice = User("alice")
    parent = service.submit_group(alice, GroupSpec(kind="workflow", plugin="table_plot"),
                                  [table_child(service, "plot"), ChildSpec(name="broken", plugin="failing_plugin")],
                                  finish=table_child(service, "report"))
    burst(env_for_workers)
    failed = service.get(alice, parent["id"])
    children = {c["name"]: c for c in failed["children"]}
    assert failed["status"] == "failed"
    assert failed["reason"] == (f"child broken ({children['broken']['id']}) failed: "
                                "ZeroDivisionError: deliberate failure for the tests")
    assert children["plot"]["status"] == "succeeded"
    assert children["report"]["status"] == "cancelled" and children["report"]["reason"] == "skipped: broken failed"

    again = service.retry(alice, parent["id"])
    assert again["status"] == "queued" and again["id"] == parent["id"]
    burst(env_for_workers)
    final = service.get(alice, parent["id"])
    after = {c["name"]: c for c in final["children"]}
    assert final["status"] == "failed"
    assert after["plot"]["attempts"] == 1 and after["plot"]["finished"] == children["plot"]["finished"]
    assert after["broken"]["attempts"] == 2 and after["report"]["status"] == "cancelled"
    broken = service.book.get(after["broken"]["id"]).data
    assert [h["status"] for h in broken["history"]] == ["failed"]
    assert [h["status"] for h in service.book.get(parent["id"]).data["history"]] == ["failed"]


def test_a_failure_with_a_retry_left_is_queued_again_in_the_same_write(service, env_for_workers, redis_conn) -> None:
    # a child whose plugin raises with a retry left goes straight from running to queued: no
    # reader (a sibling's or the reaper's refresh of the group) ever sees it failed and skips
    # its dependent or fails the parent while the retry is still to come
    alice = User("alice")
    parent = service.submit_group(alice, GroupSpec(kind="workflow", plugin="table_plot"),
                                  [ChildSpec(name="flaky", plugin="failing_plugin", retries=1)],
                                  finish=table_child(service, "report"))
    flaky = parent["children"][0]["id"]
    burst(env_for_workers)
    states = [e["status"] for e in EventStream(redis_conn, flaky).read() if e["type"] == "state"]
    assert states == ["running", "queued", "running", "failed"], states
    record = service.book.get(flaky).data
    assert record["attempts"] == 2 and record["reason"] == "ZeroDivisionError: deliberate failure for the tests"
    assert [(h["attempt"], h["status"], h["reason"]) for h in record["history"]] == [
        (1, "failed", "ZeroDivisionError: deliberate failure for the tests")]
    done = {c["name"]: c for c in service.get(alice, parent["id"])["children"]}
    assert done["report"]["reason"] == "skipped: flaky failed"  # after the last attempt only


def test_allow_failure_finish_runs_after_a_failed_child(service, env_for_workers) -> None:
    alice = User("alice")
    parent = service.submit_group(alice, GroupSpec(kind="sweep", plugin="table_plot"),
                                  [ChildSpec(name="bad", plugin="failing_plugin", kind="point")],
                                  finish=table_child(service, "compare", allow_failure=True))
    burst(env_for_workers)
    children = {c["name"]: c for c in service.get(alice, parent["id"])["children"]}
    assert children["bad"]["status"] == "failed" and children["compare"]["status"] == "succeeded"


def test_cancel_parent_cancels_queued_children(service, env_for_workers) -> None:
    alice = User("alice")
    parent = service.submit_group(alice, GroupSpec(kind="parallel", plugin="table_plot"),
                                  [table_child(service, f"c{i}", kind="chunk") for i in range(2)])
    cancelled = service.cancel(alice, parent["id"])
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "cancelled by request"
    assert {c["status"] for c in cancelled["children"]} == {"cancelled"}
    burst(env_for_workers)  # nothing runs
    assert all(c["started"] is None for c in service.get(alice, parent["id"])["children"])


def test_lost_child_is_retried_alone(service, env_for_workers, redis_conn) -> None:
    alice = User("alice")
    parent = service.submit_group(alice, GroupSpec(kind="parallel", plugin="table_plot"),
                                  [table_child(service, "a", kind="chunk", retries=1),
                                   table_child(service, "b", kind="chunk", retries=1)])
    a, b = (c["id"] for c in parent["children"])
    # a worker takes chunk "a" and dies without a trace: running, no heartbeat, no horse
    queue(redis_conn, "cpu").remove(f"hisci-{a}-1")
    service.book.apply(a, lambda r: r.start(worker="gone", host="nowhere"))
    burst(env_for_workers)  # runs "b" only
    midway = service.get(alice, parent["id"])
    assert midway["status"] == "running" and midway["progress"] == pytest.approx(0.5, abs=1e-4)
    reaper = Reaper(env_for_workers, redis_conn, service.book)
    time.sleep(1.0)  # the reaper trusts a missing heartbeat once Redis has been up for ttl / 2
    assert (a, "retried") in reaper.sweep()  # no heartbeat key: lost at the first sweep
    burst(env_for_workers)
    done = service.get(alice, parent["id"])
    children = {c["id"]: c for c in done["children"]}
    assert done["status"] == "succeeded"
    assert children[a]["attempts"] == 2 and children[b]["attempts"] == 1
    assert service.book.get(a).data["history"][0] == {**service.book.get(a).data["history"][0],
                                                      "status": "failed", "reason": "worker lost", "worker": "gone"}


def test_group_status_over_the_api(api, tokens, service, env_for_workers) -> None:
    alice = service.users.authenticate(tokens.alice)
    parent = service.submit_group(alice, GroupSpec(kind="parallel", plugin="table_plot"),
                                  [table_child(service, "only", kind="chunk")])
    burst(env_for_workers)
    body = api.get(f"/api/v1/jobs/{parent['id']}", headers=bearer(tokens.alice)).json()
    assert body["status"] == "succeeded" and body["children"][0]["name"] == "only"
    listed = api.get("/api/v1/jobs", params={"parent": parent["id"]}, headers=bearer(tokens.alice)).json()
    assert [j["id"] for j in listed["jobs"]] == [body["children"][0]["id"]]
    assert api.get(f"/api/v1/jobs/{parent['id']}", headers=bearer(tokens.bob)).status_code == 404


def test_group_refuses_bad_specs(service, redis_conn) -> None:
    from hisci.errors import InputError

    alice = User("alice")
    with pytest.raises(InputError, match="kind 'batch' is not one of workflow, parallel, sweep"):
        service.submit_group(alice, GroupSpec(kind="batch", plugin="table_plot"), [table_child(service, "x")])
    with pytest.raises(InputError, match="child 'x' waits for unknown children"):
        service.submit_group(alice, GroupSpec(kind="workflow", plugin="table_plot"),
                             [table_child(service, "x", after=("nope",))])
    with pytest.raises(InputError, match="cycle"):
        service.submit_group(alice, GroupSpec(kind="workflow", plugin="table_plot"),
                             [table_child(service, "x", after=("y",)), table_child(service, "y", after=("x",))])
    with pytest.raises(InputError, match="runner 'os:system' must be 'hisci.<module>:<function>'"):
        service.submit_group(alice, GroupSpec(kind="parallel", plugin="table_plot"),
                             [table_child(service, "x", runner="os:system")])
    assert service.book.page(service_filter(alice))[0] == []
