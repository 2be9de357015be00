"""The HTTP API: auth, ownership, path confinement, uploads, the one error shape, fuzzing."""

from __future__ import annotations

import io
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from .conftest_service import bearer, wait_for

pytestmark = pytest.mark.redis


def error_of(response):
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "problems"} <= set(body["error"])
    return body["error"]


def test_no_token_is_401_with_the_error_shape(api) -> None:
    response = api.get("/api/v1/jobs")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert api.get("/api/v1/jobs", headers=bearer("not-a-token")).status_code == 401


def test_health_reports_redis_and_queues(api) -> None:
    health = api.get("/api/v1/health").json()
    assert health["redis"] == "ok" and set(health["queues"]) == {"cpu", "gpu"}


def test_plugin_endpoints(api, tokens) -> None:
    listing = api.get("/api/v1/plugins", headers=bearer(tokens.alice)).json()
    assert "table_plot" in {p["id"] for p in listing["plugins"]}
    schema = api.get("/api/v1/plugins/table_plot/schema", headers=bearer(tokens.alice)).json()
    assert schema["properties"]["extra"]["properties"]["opacity"]["maximum"] == 1
    unknown = api.get("/api/v1/plugins/table_plt", headers=bearer(tokens.alice))
    assert unknown.status_code == 404 and "did you mean 'table_plot'" in error_of(unknown)["message"]


def test_validate_returns_pointer_level_problems(api, tokens) -> None:
    response = api.post("/api/v1/plugins/table_plot/validate", headers=bearer(tokens.alice),
                        json={"textarea": {"datTable": "a\tb\n"}, "extra": {"opacity": 7, "chart_type": "pie"}})
    assert response.status_code == 422
    problems = {p["pointer"]: p for p in error_of(response)["problems"]}
    assert problems["/extra/opacity"]["given"] == 7
    assert problems["/extra/chart_type"]["allowed"] == ["scatter", "line", "bar", "box"]
    ok = api.post("/api/v1/plugins/table_plot/validate", headers=bearer(tokens.alice),
                  json={"textarea": {"datTable": "a\tb\n"}})
    assert ok.json()["params"]["extra"]["opacity"] == 0.8


def test_malformed_json_body_is_422_with_problems(api, tokens) -> None:
    response = api.post("/api/v1/jobs", headers={**bearer(tokens.alice), "Content-Type": "application/json"},
                        content=b'{"plugin": "table_plot", "request": {,}')
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "malformed_request" and error["problems"]


def test_others_jobs_are_not_found_and_admin_sees_all(api, tokens, service) -> None:
    record = api.post("/api/v1/jobs", headers=bearer(tokens.alice),
                      json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}).json()
    for path in ("", "/log", "/files", "/files/job.json", "/zip"):
        response = api.get(f"/api/v1/jobs/{record['id']}{path}", headers=bearer(tokens.bob))
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"
    assert api.post(f"/api/v1/jobs/{record['id']}/cancel", headers=bearer(tokens.bob)).status_code == 404
    assert api.get("/api/v1/jobs", headers=bearer(tokens.bob)).json()["jobs"] == []
    assert len(api.get("/api/v1/jobs", headers=bearer(tokens.admin)).json()["jobs"]) == 1
    assert api.get(f"/api/v1/jobs/{record['id']}", headers=bearer(tokens.admin)).status_code == 200


@pytest.mark.parametrize("path", ["../../users.json", "..%2F..%2Fusers.json", "%2Fetc%2Fpasswd",
                                  "link-out/users.json", "nested/../../../users.json"])
def test_file_download_is_confined_to_the_job_folder(api, tokens, service, path) -> None:
    record = api.post("/api/v1/jobs", headers=bearer(tokens.alice),
                      json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}).json()
    folder = service.store.folder(record["id"])
    os.symlink(service.settings.data_dir, folder / "link-out")
    response = api.get(f"/api/v1/jobs/{record['id']}/files/{path}", headers=bearer(tokens.alice))
    assert response.status_code == 404
    assert b"token_sha256" not in response.content


def test_upload_is_stored_by_hash_and_usable_as_input(api, tokens, start_worker) -> None:
    start_worker()
    data = b"x,y\n1,1\n2,4\n3,9\n4,16\n"
    up = api.post("/api/v1/uploads", headers=bearer(tokens.alice), files={"file": ("squares.csv", data)})
    assert up.status_code == 201
    import hashlib

    assert up.json()["sha256"] == hashlib.sha256(data).hexdigest() and up.json()["size"] == len(data)
    record = api.post("/api/v1/jobs", headers=bearer(tokens.alice), json={"plugin": "table_plot", "request": {
        "data": {"datTable": {"value": "squares.csv", "link": up.json()["link"]}}}}).json()
    assert record["inputs"][0]["sha256"] == up.json()["sha256"]
    done = wait_for(lambda: (r := api.get(f"/api/v1/jobs/{record['id']}", headers=bearer(tokens.alice)).json())
                    ["status"] in ("succeeded", "failed") and r)
    assert done["status"] == "succeeded"
    result = api.get(f"/api/v1/jobs/{record['id']}/files/result.json", headers=bearer(tokens.alice)).json()
    assert result["rows"] == 4
    stolen = api.post("/api/v1/jobs", headers=bearer(tokens.bob), json={"plugin": "table_plot", "request": {
        "data": {"datTable": {"value": "squares.csv", "link": up.json()["link"]}}}})
    assert stolen.status_code == 422 and "not found" in error_of(stolen)["message"]


def test_server_paths_cannot_be_used_as_inputs(api, tokens) -> None:
    response = api.post("/api/v1/jobs", headers=bearer(tokens.alice), json={"plugin": "table_plot", "request": {
        "data": {"datTable": {"value": "", "link": "/etc/passwd"}}}})
    assert response.status_code == 422
    assert "'/etc/passwd' is not an upload of yours" in error_of(response)["message"]


def test_oversize_upload_is_413_and_leaves_no_partial_file(api, tokens, service) -> None:
    big = io.BytesIO(b"0" * int(1.5 * 2**20))
    response = api.post("/api/v1/uploads", headers=bearer(tokens.alice), files={"file": ("big.bin", big)})
    assert response.status_code == 413
    assert "larger than the limit of 1048576 bytes" in error_of(response)["message"]
    leftovers = list((service.settings.data_dir / "uploads").rglob("*"))
    assert leftovers == []


def test_delete_removes_the_job(api, tokens) -> None:
    record = api.post("/api/v1/jobs", headers=bearer(tokens.alice),
                      json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}).json()
    assert api.delete(f"/api/v1/jobs/{record['id']}", headers=bearer(tokens.alice)).status_code == 204
    assert api.get(f"/api/v1/jobs/{record['id']}", headers=bearer(tokens.alice)).status_code == 404


def test_fuzzed_plugin_and_job_requests_never_500(api, tokens) -> None:
    """schemathesis-generated requests (a few hundred) on every plugin and job endpoint."""
    from hypothesis import given

    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app).include(path_regex="^/api/v1/(plugins|jobs)")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    calls = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            response = case.call(headers=bearer(tokens.alice))
            calls.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])

        check()
    assert len(calls) >= 200


def test_login_cookie_works_for_downloads_only(api, tokens) -> None:
    record = api.post("/api/v1/jobs", headers=bearer(tokens.alice),
                      json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}).json()
    api.cookies.set("hisci_token", tokens.alice)
    try:
        assert api.get(f"/api/v1/jobs/{record['id']}/files/job.json").status_code == 200
        assert api.post(f"/api/v1/jobs/{record['id']}/cancel").status_code == 401
    finally:
        api.cookies.clear()


def test_polled_pages_authenticate_like_every_other_route(api, tokens, service) -> None:
    """The status and list pages resolve their user without FastAPI's dependencies (for
    speed): the same tokens, schemes, cookie rule and worker-token rule must hold, and
    OpenAPI must still say they need the bearer token."""
    record = api.post("/api/v1/jobs", headers=bearer(tokens.alice),
                      json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}).json()
    status, listing = f"/api/v1/jobs/{record['id']}", "/api/v1/jobs?limit=5"
    for path in (status, listing):
        assert api.get(path, headers=bearer(tokens.alice)).status_code == 200
        assert api.get(path, headers={"Authorization": f"bearer  {tokens.alice} "}).status_code == 200
        for header in (f"Basic {tokens.alice}", "Bearer", "Bearer ", tokens.alice, "Bearer wrong"):
            answer = api.get(path, headers={"Authorization": header})
            assert answer.status_code == 401 and error_of(answer)["code"] == "unauthorized", header
            assert answer.headers["www-authenticate"] == "Bearer"
    assert api.get(status, headers=bearer(tokens.bob)).status_code == 404  # not bob's job
    worker = service.users.add("node7", worker=True)
    refused = api.get(status, headers=bearer(worker))
    assert refused.status_code == 403 and "worker token" in error_of(refused)["message"]
    assert [j["id"] for j in api.get(listing, headers=bearer(tokens.alice)).json()["jobs"]] == [record["id"]]
    assert api.get(listing, headers=bearer(tokens.bob)).json()["jobs"] == []
    api.cookies.set("hisci_token", tokens.alice)  # GET pages accept the web app's login cookie
    try:
        assert api.get(status).json()["id"] == record["id"]
    finally:
        api.cookies.clear()
    spec = api.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/jobs/{job_id}", "/api/v1/jobs"):
        assert spec[path]["get"]["security"] == [{"HTTPBearer": []}]
        assert "401" in spec[path]["get"]["responses"]
