"""Issue 14 section 1: no user can make a job read a file that is not theirs. The attack
first: Hiplot wrappers nested more than one level, absolute paths, others' uploads, through
the API (POST /jobs, /validate), the Dash submit callback and `hicli submit`. Each is refused
with 422 and no job record is written."""

from __future__ import annotations

import json

import pytest

from hisci.errors import InputError, ParamsError
from hisci.requests import canonical_request

from .conftest_service import bearer

pytestmark = pytest.mark.redis


def wrapped(link: str) -> dict[str, dict]:
    """The request shapes of the attack, each pointing datTable at ``link``."""
    data = {"datTable": {"link": link, "value": "x.csv"}}
    return {
        "params.params": {"params": {"params": {"data": data}}},
        "config.config": {"config": {"config": {"data": data}}},
        "params.config.config": {"params": {"config": {"config": {"data": data}}}},
        "params.config.params": {"params": {"config": {"params": {"data": data}}}},
        "mixed": {"params": {"config": {"data": data}}, "data": data},
        "flat": {"data": data},
    }


@pytest.fixture
def victim_file(api, tokens, service) -> tuple[str, str]:
    """Alice's upload: (its stored absolute path, its upload link)."""
    up = api.post("/api/v1/uploads", headers=bearer(tokens.alice),
                  files={"file": ("secret.csv", b"x,y\n1,2\n3,4\n")}).json()
    user = service.users.authenticate(tokens.alice)
    return str(service.uploads.path(user.id, up["id"])), up["link"]


def _no_records(service) -> bool:
    return not list(service.store.jobs_dir.glob("*/job.json")) if service.store.jobs_dir.exists() else True


@pytest.mark.parametrize("shape", list(wrapped("x")))
def test_api_refuses_wrapped_and_foreign_links(api, tokens, service, victim_file, shape) -> None:
    path, link = victim_file
    targets = [path, link, str(service.settings.data_dir / "users.json"), "/etc/passwd", "../../../../etc/passwd"]
    for target in targets:
        request = wrapped(target)[shape]
        for url, body in (("/api/v1/jobs", {"plugin": "table_plot", "request": request}),
                          ("/api/v1/plugins/table_plot/validate", request)):
            response = api.post(url, headers=bearer(tokens.bob), json=body)
            assert response.status_code == 422, (shape, target, url, response.text)
            text = response.text
            assert ("Hiplot wrapping" in text or "only key" in text or "not an upload of yours" in text
                    or "not found" in text), text
    assert _no_records(service)


def test_normaliser_is_idempotent_and_refuses_depth() -> None:
    inner = {"extra": {"a": 1}, "textarea": {"t": "x"}}
    assert canonical_request({"params": {"config": {"extra": {"a": 1}}, "textarea": {"t": "x"}}}) == inner
    assert canonical_request(canonical_request({"config": {"extra": {"a": 1}}, "textarea": {"t": "x"}})) == inner
    with pytest.raises(ParamsError, match="more than one level of Hiplot wrapping"):
        canonical_request({"params": {"params": {"extra": {}}}})
    with pytest.raises(ParamsError) as info:
        canonical_request({"config": {"config": {"extra": {}}}})
    assert info.value.problems[0].pointer == "/config/config"
    with pytest.raises(ParamsError, match="must be a JSON object"):
        canonical_request([1, 2])


def test_owner_reaches_own_upload_and_plugin_examples_admin_reaches_data_roots(api, tokens, service, victim_file,
                                                                              tmp_path) -> None:
    path, link = victim_file
    alice = service.users.authenticate(tokens.alice)
    plugin = service.registry.get("table_plot")
    ok = service.validate("table_plot", {"data": {"datTable": {"link": link}}}, alice)
    assert ok["data"]["datTable"]["link"] == path
    assert service.validate("table_plot", {"data": {"datTable": {"link": path}}}, alice)["data"]["datTable"]["link"] == path
    sample = next(p for p in plugin.folder.rglob("*") if p.is_file() and p.suffix in (".txt", ".csv", ".tsv"))
    relative = str(sample.relative_to(plugin.folder))
    got = service.validate("table_plot", {"data": {"datTable": {"link": relative}}}, alice)
    assert got["data"]["datTable"]["link"] == str(sample.resolve())
    # an admin: only under HISCI_DATA_ROOTS
    root = tmp_path / "beamline"
    root.mkdir()
    (root / "scan.csv").write_text("x,y\n1,2\n")
    admin = service.users.authenticate(tokens.admin)
    with pytest.raises(InputError, match="HISCI_DATA_ROOTS"):
        service.validate("table_plot", {"data": {"datTable": {"link": str(root / "scan.csv")}}}, admin)
    service.settings = service.settings.model_copy(update={"data_roots": (root,)})
    got = service.validate("table_plot", {"data": {"datTable": {"link": str(root / "scan.csv")}}}, admin)
    assert got["data"]["datTable"]["link"] == str((root / "scan.csv").resolve())
    bob = service.users.authenticate(tokens.bob)
    with pytest.raises(InputError, match="not an upload of yours"):
        service.validate("table_plot", {"data": {"datTable": {"link": str(root / "scan.csv")}}}, bob)
    # a symlink inside the plugin folder's reach does not help: the target is checked
    evil = tmp_path / "evil.csv"
    evil.symlink_to(path)
    with pytest.raises(InputError, match="not an upload of yours"):
        service.validate("table_plot", {"data": {"datTable": {"link": str(evil)}}}, bob)


def test_non_string_link_and_nul_are_422(api, tokens) -> None:
    for link in ([123], "a\x00b", {"x": 1}):
        response = api.post("/api/v1/jobs", headers=bearer(tokens.bob),
                            json={"plugin": "table_plot", "request": {"data": {"datTable": {"link": link}}}})
        assert response.status_code == 422, (link, response.text)
        assert response.json()["error"]["problems"], response.text


def test_dash_submit_callback_refuses_the_wrapped_request(service, service_settings, tokens, victim_file) -> None:
    """The web form's submit callback, called as the browser calls it: refused, no record."""
    from dash_app import create_dash_app

    path, _ = victim_file
    client = create_dash_app(service_settings, service.registry, service).server.test_client()
    for request in wrapped(path).values():
        body = {"outputs": [
                    {"id": "url", "property": "pathname"}, {"id": "hs-submit-msg", "property": "children"}],
                "inputs": [{"id": "hs-submit", "property": "n_clicks", "value": 1}],
                "state": [{"id": "hs-request", "property": "data", "value": request},
                          {"id": "hs-form-ref", "property": "data", "value": {"id": "table_plot"}},
                          {"id": "hs-token", "property": "data", "value": tokens.bob},
                          {"id": "hs-lang", "property": "data", "value": "en"}],
                "changedPropIds": ["hs-submit.n_clicks"]}
        answer = _dash_call(client, body)
        assert "/jobs/" not in json.dumps(answer.get("url", {})), answer
        message = json.dumps(answer["hs-submit-msg"])
        assert "Hiplot wrapping" in message or "only key" in message or "not an upload of yours" in message, message
    assert _no_records(service)


def _dash_call(client, body: dict) -> dict:
    import re

    callbacks = client.get("/_dash-dependencies").get_json()
    callback = next(c for c in callbacks if "hs-submit-msg.children" in c["output"])
    body["output"] = callback["output"]
    given = {(s["id"], s["property"]): s for s in body["state"]}  # other form state: empty
    body["state"] = [given.get((s["id"], s["property"]), {**s, "value": None}) for s in callback["state"]]
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert re.search("multi", response.get_data(as_text=True))
    return response.get_json()["response"]


def test_hicli_submit_refuses(live_service, tmp_path) -> None:
    import json
    import subprocess
    import sys

    request = tmp_path / "req.json"
    request.write_text(json.dumps({"params": {"params": {"data": {"datTable": {"link": "/etc/passwd"}}}}}))
    env = {**__import__("os").environ, "HISCI_URL": live_service.url, "HISCI_TOKEN": live_service.tokens.bob,
           "HISCI_NO_ENTRY_POINTS": "1"}
    out = subprocess.run([sys.executable, "-m", "hicli.main", "submit", "table_plot", "--params", str(request)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Hiplot wrapping" in out.stderr, out.stderr
    assert _no_records(live_service.service)
