"""Issue 14 section 4: limits and crash paths. Each attack as a request; each answer a 4xx in
the one error shape (never 500, never HTML)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from .conftest_service import bearer

pytestmark = pytest.mark.redis


def error_of(response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    return response.json()["error"]


def test_unauthenticated_upload_is_refused_before_the_body_is_read(live_service) -> None:
    host, port = live_service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 62914560\r\n\r\n" + b"0" * 65536)
        start = time.monotonic()
        answer = ""
        while "}}" not in answer and time.monotonic() - start < 5:
            answer += sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 401"), answer[:200]
    assert time.monotonic() - start < 5  # answered with 60 MB still unsent
    assert '"unauthorized"' in answer


def test_declared_oversize_upload_is_413_before_reading(api, tokens) -> None:
    response = api.post("/api/v1/uploads", headers={**bearer(tokens.alice), "Content-Length": str(50 * 2**20)},
                        content=b"x")
    assert response.status_code == 413 and "HISCI_UPLOAD_LIMIT_MB" in error_of(response)["message"]


def test_json_body_over_the_cap_is_413(api, tokens) -> None:
    big = {"plugin": "table_plot", "request": {"textarea": {"datTable": "1\t2\n" * 700_000}}}
    response = api.post("/api/v1/jobs", headers=bearer(tokens.alice), json=big)
    assert response.status_code == 413
    assert "larger than 2 MB (HISCI_MAX_REQUEST_MB)" in error_of(response)["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_422(api, tokens, literal) -> None:
    body = '{"plugin": "slow_plugin", "request": {"extra": {"seconds": LIT}}}'.replace("LIT", literal)
    response = api.post("/api/v1/jobs", headers={**bearer(tokens.alice), "Content-Type": "application/json"},
                        content=body)
    assert response.status_code == 422, response.text
    problem = error_of(response)["problems"][0]
    assert problem["pointer"] == "/extra/seconds" and "not a finite number" in problem["message"]
    validate = api.post("/api/v1/plugins/slow_plugin/validate", content='{"extra": {"seconds": LIT}}'.replace("LIT", literal),
                        headers={**bearer(tokens.alice), "Content-Type": "application/json"})
    assert validate.status_code == 422 and "not a finite number" in validate.text


def test_upload_names(api, tokens, service) -> None:
    def up(name, data):
        return api.post("/api/v1/uploads", headers=bearer(tokens.alice), files={"file": (name, data)})

    poisoned = up("owners.json", b'["mallory"]')
    assert poisoned.status_code == 201
    again = api.post("/api/v1/uploads", headers=bearer(tokens.bob), files={"file": ("a.json", b'["mallory"]')})
    assert again.status_code == 201 and again.json()["id"] == poisoned.json()["id"]
    alice, bob = service.users.authenticate(tokens.alice), service.users.authenticate(tokens.bob)
    assert service.uploads.path(bob.id, poisoned.json()["id"]).read_bytes() == b'["mallory"]'
    assert service.uploads.owns(alice.id, poisoned.json()["id"])
    long = up("a" * 300 + ".csv", b"1,2\n")
    assert long.status_code == 201 and long.json()["name"].endswith(".csv") and len(long.json()["name"]) <= 128
    dots = up("..", b"dots\n")
    assert dots.status_code == 201 and dots.json()["name"] == "upload.bin"
    assert service.uploads.path(alice.id, dots.json()["id"]).read_bytes() == b"dots\n"
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.csv"\r\n\r\nnul\n\r\n--b--\r\n')
    nul = api.post("/api/v1/uploads", content=body,
                   headers={**bearer(tokens.alice), "Content-Type": "multipart/form-data; boundary=b"})
    assert nul.status_code == 422 and "control characters" in error_of(nul)["message"]
    assert not list((service.settings.data_dir / "uploads").glob(".partial-*"))


def test_huge_offsets_and_nul_paths(api, tokens) -> None:
    record = api.post("/api/v1/jobs", headers=bearer(tokens.alice),
                      json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}).json()
    job = record["id"]
    events = api.get(f"/api/v1/jobs/{job}/events", params={"after": "99999999999999999999999-0"},
                     headers=bearer(tokens.alice))
    assert events.status_code == 422 and error_of(events)["problems"]
    log = api.get(f"/api/v1/jobs/{job}/log", params={"offset": 28250638603608012}, headers=bearer(tokens.alice))
    assert log.status_code == 200 and log.json()["text"] == ""
    nul = api.get(f"/api/v1/jobs/{job}/files/a%00b", headers=bearer(tokens.alice))
    assert nul.status_code == 404 and error_of(nul)["code"] == "not_found"


def test_api_prefix_answers_json_404_and_405(live_service) -> None:
    token = bearer(live_service.tokens.alice)
    missing = httpx.get(f"{live_service.url}/api/v1/nothing/here", headers=token)
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong = httpx.delete(f"{live_service.url}/api/v1/plugins", headers=token)
    assert wrong.status_code == 405 and error_of(wrong)["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["allow"]


def test_re_added_user_does_not_inherit_jobs_or_uploads(api, service) -> None:
    old = service.users.add("carol")
    job = api.post("/api/v1/jobs", headers=bearer(old),
                   json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}).json()
    upload = api.post("/api/v1/uploads", headers=bearer(old), files={"file": ("c.csv", b"carol\n")}).json()
    assert job["owner_id"] and job["owner"] == "carol"
    service.users.revoke("carol")
    new = service.users.add("carol")
    assert api.get(f"/api/v1/jobs/{job['id']}", headers=bearer(new)).status_code == 404
    assert api.get("/api/v1/jobs", headers=bearer(new)).json()["jobs"] == []
    stolen = api.post("/api/v1/plugins/table_plot/validate", headers=bearer(new),
                      json={"data": {"datTable": {"link": upload["link"]}}})
    assert stolen.status_code == 422


def test_login_cookie_is_secure_over_https_and_expires() -> None:
    import flask

    from dash_app.pages.login import COOKIE_MAX_AGE, over_https

    app = flask.Flask("t")
    with app.test_request_context("/", headers={"X-Forwarded-Proto": "https"}):
        assert over_https()
    with app.test_request_context("/", base_url="https://facility.example"):
        assert over_https()
    with app.test_request_context("/"):
        assert not over_https()
    assert 0 < COOKIE_MAX_AGE <= 86400


def test_openapi_documents_error_statuses(api) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert {"401", "404", "413", "422", "503"} <= set(paths["/api/v1/jobs"]["post"]["responses"])
    assert {"401", "413", "422"} <= set(paths["/api/v1/uploads"]["post"]["responses"])
    assert {"401", "404"} <= set(paths["/api/v1/jobs/{job_id}"]["get"]["responses"])
    schema = paths["/api/v1/jobs"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorBody"}


def test_retry_of_an_unfinished_job_is_409(api, tokens) -> None:
    record = api.post("/api/v1/jobs", headers=bearer(tokens.alice),
                      json={"plugin": "slow_plugin", "request": {"extra": {"seconds": 0.1}}}).json()
    response = api.post(f"/api/v1/jobs/{record['id']}/retry", headers=bearer(tokens.alice))
    assert response.status_code == 409 and error_of(response)["code"] == "conflict"
    assert "is still queued" in error_of(response)["message"]
    assert "409" in api.get("/openapi.json").json()["paths"]["/api/v1/jobs/{job_id}/retry"]["post"]["responses"]
