"""Issue 14 section 3 in the service: the preview page's "Run example" is a preview job that a
real RQ worker runs (its own timeout, a memory cap in the work horse), owned by the logged-in
user, built from a confined snapshot of the edited folder, and removed again when the page has
drawn it, when the page is closed and at every service start."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from hisci import load_plugin
from hisci.errors import ConflictError, HisciError, InputError
from hisci.jobs import JobService
from hisci.jobs.preview import SNAPSHOT, close_preview, preview_ids, submit_preview
from hisci.jobs.record import JobState
from hisci.jobs.store import JobNotFound
from hisci.preview import snapshot

from .conftest_service import burst_worker, worker_env

pytestmark = pytest.mark.redis
TEXTS = ("meta.json", "data.json", "ui.json")


@pytest.fixture
def env_for_workers(service_settings, monkeypatch):
    for key, value in worker_env(service_settings).items():
        monkeypatch.setenv(key, value)


def _slow(plugin_copy, seconds: float, **extra) -> Path:
    def example(data):
        data["exampleData"] = {"config": {"extra": {"seconds": seconds, **extra}}}

    return plugin_copy("slow_plugin", edit={"data.json": example})


def _edited(service: JobService, folder: Path):
    """The web app's preview folder for ``folder`` (JSON written, code linked to the base)."""
    from dash_app.pages.preview import PreviewCache

    cache = PreviewCache(root=service.settings.data_dir / "preview")
    base = load_plugin(folder, "fixture")
    entry = cache.build({n: (folder / n).read_text() for n in TEXTS}, base)
    return entry, base


def test_preview_job_runs_on_a_worker_for_its_owner_and_close_removes_it(
        service, tokens, plugin_copy, env_for_workers) -> None:
    entry, base = _edited(service, _slow(plugin_copy, 0.2))
    assert (entry["folder"] / "plugin.py").is_symlink()  # the preview folder links the base's code
    alice = service.users.authenticate(tokens.alice)
    record = submit_preview(service, alice, entry["folder"], base)
    assert record["kind"] == "preview" and record["owner_id"] == alice.id and record["queue"] == "cpu"
    assert record["timeout"] == 300.0 and record["timeout_setting"] == "HISCI_PREVIEW_TIMEOUT"
    copied = service.store.folder(record["id"]) / SNAPSHOT / "slow_plugin"
    assert sorted(p.name for p in copied.iterdir()) == ["__init__.py", "data.json", "meta.json", "plugin.py",
                                                        "ui.json"]
    assert not any(p.is_symlink() for p in copied.rglob("*"))  # a copy, no links out
    assert (copied / "plugin.py").read_bytes() == (base.folder / "plugin.py").read_bytes()
    assert service.list_jobs(alice)[0] == []  # previews stay out of job lists
    bob = service.users.authenticate(tokens.bob)
    with pytest.raises(JobNotFound):
        service.get(bob, record["id"])

    burst_worker(service.settings)  # a real RQ worker: the run happens in a forked work horse
    done = service.get(alice, record["id"])
    assert done["status"] == "succeeded", done
    assert done["worker"] and done["host"] and done["attempts"] == 1
    result = json.loads((service.store.folder(record["id"]) / "result.json").read_text())
    assert result == {"slept": 0.2, "steps": 4}
    with pytest.raises(ConflictError, match="a preview run cannot be retried"):
        service.retry(alice, record["id"])

    close_preview(service, bob, record["id"])  # another user's close does nothing
    assert service.book.get(record["id"]).state == JobState.SUCCEEDED
    close_preview(service, alice, record["id"])
    assert not service.store.folder(record["id"]).exists() and preview_ids(service) == []


def test_preview_job_past_its_timeout_is_stopped_with_the_reason(
        service_settings, tokens, plugin_copy, env_for_workers) -> None:
    from hisci import Registry

    settings = service_settings.model_copy(update={"preview_timeout": 2.0})
    service = JobService(settings, Registry.discover(settings))
    entry, base = _edited(service, _slow(plugin_copy, 60, fail=True))
    record = submit_preview(service, service.users.authenticate(tokens.alice), entry["folder"], base)
    start = time.monotonic()
    burst_worker(settings)
    took = time.monotonic() - start
    done = service.book.get(record["id"])
    assert done.state == JobState.FAILED and done.reason == "timed out after 2 s (HISCI_PREVIEW_TIMEOUT)"
    assert took < 30, took
    log = (service.store.folder(record["id"]) / "log.txt").read_text()
    assert "JobTimeoutException" in log and "should have been stopped" not in log


def test_preview_job_memory_cap_fails_the_run_in_the_work_horse(
        service_settings, tokens, plugin_copy, env_for_workers) -> None:
    from hisci import Registry

    settings = service_settings.model_copy(update={"preview_memory_mb": 64.0})
    service = JobService(settings, Registry.discover(settings))
    folder = plugin_copy("slow_plugin")
    (folder / "plugin.py").write_text(
        "def run(ctx):\n    block = bytearray(512 * 2**20)\n    return {'bytes': len(block)}\n")
    entry, base = _edited(service, folder)
    record = submit_preview(service, service.users.authenticate(tokens.alice), entry["folder"], base)
    burst_worker(settings)
    done = service.book.get(record["id"])
    assert done.state == JobState.FAILED and done.reason.startswith("MemoryError"), done.data
    import resource

    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY  # this process untouched


def test_snapshot_refuses_links_out_and_oversize_and_leaves_nothing(tmp_path, service, tokens) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "ok.txt").write_text("fine")
    (source / "secret").symlink_to("/etc/hostname")
    with pytest.raises(InputError, match="secret links outside the plugin folder"):
        snapshot(source, tmp_path / "copy", (), 2**20)
    assert not (tmp_path / "copy").exists()
    (source / "secret").unlink()
    (source / "big.bin").write_bytes(b"x" * 5000)
    with pytest.raises(InputError, match="larger than"):
        snapshot(source, tmp_path / "copy", (), 4096)
    assert not (tmp_path / "copy").exists()
    assert snapshot(source, tmp_path / "copy", (), 2**20) == 5004


def test_preview_job_refuses_example_links_out_of_the_folder(service, tokens, plugin_copy) -> None:
    def sneaky(data):
        data["exampleData"] = {"config": {"data": {"datTable": {"link": "/etc/hostname"}}}}

    folder = plugin_copy("table_plot", edit={"data.json": sneaky})
    with pytest.raises(HisciError, match="example input 'datTable' must be a file inside the plugin folder"):
        submit_preview(service, service.users.authenticate(tokens.alice), folder)
    assert preview_ids(service) == [] and not list((service.settings.data_dir / "jobs").glob("*/snapshot"))


def _run_body(texts: dict[str, str], token: str | None, job: str | None = None) -> dict:
    return {"output": "..hs-pv-result.children...hs-pv-job.data...hs-pv-poll.disabled..",
            "outputs": [{"id": "hs-pv-result", "property": "children"}, {"id": "hs-pv-job", "property": "data"},
                        {"id": "hs-pv-poll", "property": "disabled"}],
            "inputs": [{"id": "hs-pv-run", "property": "n_clicks", "value": 1}],
            "state": [{"id": "hs-pv-meta", "property": "value", "value": texts["meta.json"]},
                      {"id": "hs-pv-data", "property": "value", "value": texts["data.json"]},
                      {"id": "hs-pv-ui", "property": "value", "value": texts["ui.json"]},
                      {"id": "hs-pv-workflow", "property": "value", "value": ""},
                      {"id": "hs-pv-base", "property": "data", "value": "slow_plugin"},
                      {"id": "hs-lang", "property": "data", "value": "en"},
                      {"id": "hs-token", "property": "data", "value": token},
                      {"id": "hs-pv-job", "property": "data", "value": job}],
            "changedPropIds": ["hs-pv-run.n_clicks"]}


def _poll_body(app, job: str, token: str | None) -> dict:
    key = next(k for k in app.callback_map if k.startswith("..hs-pv-result.children@"))
    suffix = key.split("children", 1)[1].split("...", 1)[0]  # Dash's allow_duplicate hash
    return {"output": key,
            "outputs": [{"id": "hs-pv-result", "property": f"children{suffix}"},
                        {"id": "hs-pv-job", "property": f"data{suffix}"},
                        {"id": "hs-pv-poll", "property": f"disabled{suffix}"}],
            "inputs": [{"id": "hs-pv-poll", "property": "n_intervals", "value": 1}],
            "state": [{"id": "hs-pv-job", "property": "data", "value": job},
                      {"id": "hs-lang", "property": "data", "value": "en"},
                      {"id": "hs-token", "property": "data", "value": token}],
            "changedPropIds": ["hs-pv-poll.n_intervals"]}


def test_web_preview_run_is_a_job_polled_drawn_and_removed(service, tokens, env_for_workers) -> None:
    from dash_app import create_dash_app

    from .conftest import FIXTURE_PLUGINS

    app = create_dash_app(service.settings, service.registry, service)
    client = app.server.test_client()
    texts = {n: (FIXTURE_PLUGINS / "slow_plugin" / n).read_text() for n in TEXTS}
    refused = client.post("/_dash-update-component", json=_run_body(texts, None))
    assert refused.status_code == 200 and "log in" in refused.get_data(as_text=True).lower()
    assert preview_ids(service) == [] and list((service.settings.data_dir / "preview").iterdir()) == []

    started = client.post("/_dash-update-component", json=_run_body(texts, tokens.alice))
    response = started.get_json()["response"]
    job_id = response["hs-pv-job"]["data"]
    assert preview_ids(service) == [job_id] and response["hs-pv-poll"]["disabled"] is False
    assert "queued" in json.dumps(response["hs-pv-result"])
    waiting = client.post("/_dash-update-component", json=_poll_body(app, job_id, tokens.alice)).get_json()
    assert "queued" in json.dumps(waiting["response"]) and preview_ids(service) == [job_id]

    burst_worker(service.settings)
    drawn = client.post("/_dash-update-component", json=_poll_body(app, job_id, tokens.alice)).get_json()["response"]
    text = json.dumps(drawn)
    assert '"succeeded"' in text and '\\"slept\\": 0.1' in text and "plugin slow_plugin" in text
    assert drawn["hs-pv-poll"] == {next(iter(drawn["hs-pv-poll"])): True}
    assert preview_ids(service) == [] and not service.store.folder(job_id).exists()  # removed once drawn


def test_page_close_and_service_start_remove_preview_jobs(service, tokens, plugin_copy) -> None:
    from dash_app import create_dash_app

    app = create_dash_app(service.settings, service.registry, service)
    client = app.server.test_client()
    alice = service.users.authenticate(tokens.alice)
    entry, base = _edited(service, _slow(plugin_copy, 30))
    first = submit_preview(service, alice, entry["folder"], base)["id"]
    second = submit_preview(service, alice, entry["folder"], base)["id"]
    assert client.post("/_hisci/preview-close", json={"token": tokens.bob, "job": first}).status_code == 204
    assert client.post("/_hisci/preview-close", json={"job": first}).status_code == 204  # no token
    assert sorted(preview_ids(service)) == sorted([first, second])  # neither removed anything
    assert client.post("/_hisci/preview-close", json={"token": tokens.alice, "job": first}).status_code == 204
    assert preview_ids(service) == [second] and not service.store.folder(first).exists()
    create_dash_app(service.settings, service.registry, service)  # what a service start does
    assert preview_ids(service) == [] and not service.store.folder(second).exists()
    assert not os.listdir(service.settings.data_dir / "preview")
