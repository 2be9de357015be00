"""The jobs API on the job index, run against SQLite and against a real PostgreSQL server:
lists (filters, keyset pages), and success / failure / retry / queued-cancel with an
in-process RQ burst worker."""

from __future__ import annotations

import uuid

import pytest

from hisci.jobs.record import JobRecord

from .conftest_service import bearer, burst_worker, worker_env

pytestmark = pytest.mark.redis


@pytest.fixture
def service_settings(service_settings, database_url, monkeypatch):
    settings = service_settings.model_copy(update={"database_url": database_url})
    for key, value in worker_env(settings).items():
        monkeypatch.setenv(key, value)
    return settings


def error_of(response) -> dict:
    assert 400 <= response.status_code < 500, response.text
    return response.json()["error"]


def finished(owner, plugin: str, minute: int, state: str = "succeeded") -> JobRecord:
    return JobRecord({"id": uuid.uuid4().hex[:16], "plugin": {"id": plugin, "version": "1"}, "owner": owner.name,
                      "owner_id": owner.id,
                      "status": state, "params": {}, "attempts": 1,
                      "created": f"2026-11-30T{minute // 60:02d}:{minute % 60:02d}:00.000+00:00"})


def test_list_filters_and_keyset_pages(api, tokens, service) -> None:
    plugins = ("table_plot", "pdf_fit", "nhit_events")
    alice, bob = (service.users.authenticate(t) for t in (tokens.alice, tokens.bob))
    records = [finished(alice, plugins[i % 3], i, "failed" if i % 5 == 0 else "succeeded") for i in range(120)]
    service.book.create(*records, finished(bob, "table_plot", 7))
    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/jobs", params={"limit": 50, **({"cursor": cursor} if cursor else {})},
                       headers=bearer(tokens.alice)).json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    newest_first = [r.id for r in sorted(records, key=lambda r: r.data["created"], reverse=True)]
    assert seen == newest_first  # 50 + 50 + 20, no repeats, nothing of bob's

    def ids(token=tokens.alice, **params):
        return {j["id"] for j in api.get("/api/v1/jobs", params={"limit": 500, **params},
                                         headers=bearer(token)).json()["jobs"]}

    assert ids(status="failed") == {r.id for r in records if r.state.value == "failed"} and len(ids(status="failed")) == 24
    assert ids(plugin="pdf_fit") == {r.id for r in records[1::3]}
    assert ids(q="NHIT") == {r.id for r in records[2::3]}
    assert ids(created_after="2026-11-30T01:00:00+00:00", created_before="2026-11-30T01:10:00+00:00") == \
        {r.id for r in records[61:70]}
    assert len(ids(tokens.admin)) == 121 and len(ids(tokens.admin, owner="bob")) == 1
    assert error_of(api.get("/api/v1/jobs", params={"owner": "bob"}, headers=bearer(tokens.alice)))["message"] \
        .startswith("only admins may list other users' jobs")
    bad = error_of(api.get("/api/v1/jobs", params={"cursor": "nonsense!"}, headers=bearer(tokens.alice)))
    assert bad["message"].startswith("cursor is not one this server gave out")
    when = error_of(api.get("/api/v1/jobs", params={"created_after": "yesterday"}, headers=bearer(tokens.alice)))
    assert when["message"].startswith("created_after: 'yesterday' is not an ISO 8601 time")
    assert api.get("/api/v1/jobs", params={"status": "lost"}, headers=bearer(tokens.alice)).status_code == 422


def submit(api, token, plugin, request=None) -> dict:
    response = api.post("/api/v1/jobs", json={"plugin": plugin, "request": request or {}}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()


def test_success_failure_retry_and_queued_cancel(api, tokens, service, service_settings) -> None:
    ok = submit(api, tokens.alice, "table_plot", service.registry.get("table_plot").example_request())
    bad = submit(api, tokens.alice, "failing_plugin")
    gone = submit(api, tokens.alice, "slow_plugin", {"extra": {"seconds": 0.1}})
    cancelled = api.post(f"/api/v1/jobs/{gone['id']}/cancel", headers=bearer(tokens.alice)).json()
    assert cancelled["status"] == "cancelled" and cancelled["reason"] == "cancelled before it started"
    burst_worker(service_settings)

    def status(job_id):
        return api.get(f"/api/v1/jobs/{job_id}", headers=bearer(tokens.alice)).json()

    done = status(ok["id"])
    assert done["status"] == "succeeded" and done["progress"] == 1.0 and done["worker"] and done["attempts"] == 1
    failed = status(bad["id"])
    assert failed["status"] == "failed" and failed["reason"] == "ZeroDivisionError: deliberate failure for the tests"
    assert status(gone["id"])["started"] is None
    retry = api.post(f"/api/v1/jobs/{bad['id']}/retry", headers=bearer(tokens.alice)).json()
    burst_worker(service_settings)
    again = status(retry["id"])
    assert again["status"] == "failed" and again["retry_of"] == bad["id"]
    listed = api.get("/api/v1/jobs", params={"status": "failed"}, headers=bearer(tokens.alice)).json()["jobs"]
    assert [j["id"] for j in listed] == [retry["id"], bad["id"]]
    assert api.delete(f"/api/v1/jobs/{ok['id']}", headers=bearer(tokens.alice)).status_code == 204
    assert api.get(f"/api/v1/jobs/{ok['id']}", headers=bearer(tokens.alice)).status_code == 404
    assert not service.store.folder(ok["id"]).exists()


def test_records_from_before_user_ids_stay_listed_for_their_migrated_owner(api, service) -> None:
    """users.json entries without an id become ``name:<name>``; so do records without owner_id."""
    from hisci.jobs.users import _hash
    from hisci.storage import write_json

    old = finished(type("U", (), {"name": "dave", "id": None})(), "table_plot", 3)
    service.book.create(old)
    write_json(service.settings.data_dir / "users.json", {"dave": {"token_sha256": _hash("tok-dave"), "admin": False}})
    users = type(service.users).open(service.settings.data_dir, service.settings.database_url)
    assert users.authenticate("tok-dave").id == "name:dave"
    assert [j["id"] for j in api.get("/api/v1/jobs", headers=bearer("tok-dave")).json()["jobs"]] == [old.id]


def test_users_json_moves_into_the_database(tmp_path, database_url) -> None:
    from hisci.jobs.users import UserStore, _hash
    from hisci.storage import write_json

    write_json(tmp_path / "users.json", {"carol": {"token_sha256": _hash("tok-carol"), "admin": True, "id": "u-7"}})
    store = UserStore.open(tmp_path, database_url)
    assert store.authenticate("tok-carol") == store.list()[0]
    assert store.list()[0].name == "carol" and store.list()[0].admin and store.list()[0].id == "u-7"
    assert not (tmp_path / "users.json").exists() and (tmp_path / "users.json.migrated").exists()
    assert store.authenticate("wrong") is None


@pytest.mark.parametrize("path", [
    "/api/v1/jobs/%00", "/api/v1/jobs/owners.json", "/api/v1/jobs/users.json", "/api/v1/jobs/..%2F..%2Fetc",
    "/api/v1/jobs/" + "a" * 5000, "/api/v1/jobs?limit=1e999", "/api/v1/jobs?limit=NaN", "/api/v1/jobs?limit=0",
    "/api/v1/jobs?cursor=%00", "/api/v1/jobs?cursor=" + "z" * 300, "/api/v1/jobs?status=%00",
    "/api/v1/jobs?created_after=NaN", "/api/v1/jobs?q=%00",
])
def test_polled_pages_refuse_odd_input_with_a_4xx(api, tokens, path) -> None:
    """The async status and list pages, on SQLite and PostgreSQL: never a 500, always the
    one error shape (PostgreSQL refuses a NUL in text, so NULs stop at the boundary)."""
    answer = api.get(path, headers=bearer(tokens.alice))
    assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:200])
    error = answer.json()["error"]
    assert set(error) >= {"code", "message", "problems"} and error["message"]
