"""Issue 14 section 3: preview runs leave the web server (a child process with a timeout and a
memory cap), leave no temp folders behind, and need a login when a service is attached."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hisci import Registry, Settings, load_plugin

from .conftest import FIXTURE_PLUGINS
from .dash_calls import dash_call


def _slow(plugin_copy, seconds: float) -> Path:
    def example(data):
        data["exampleData"] = {"config": {"extra": {"seconds": seconds}}}

    return plugin_copy("slow_plugin", edit={"data.json": example})


def test_preview_run_is_a_child_process_and_its_folder_is_removed(tmp_path, plugin_copy) -> None:
    from dash_app.pages.preview import PreviewCache, run_example

    folder = _slow(plugin_copy, 0.2)
    cache = PreviewCache(root=tmp_path / "preview")
    texts = {name: (folder / name).read_text() for name in ("meta.json", "data.json", "ui.json")}
    entry = cache.build(texts, load_plugin(folder, "fixture"))
    parts = run_example(entry["plugin"], entry["folder"].parent, "en")
    badge = parts[0].children[0]
    assert badge.children == "succeeded", parts[0]
    assert json.loads(parts[-1].children) == {"slept": 0.2, "steps": 4}
    assert [p.name for p in entry["folder"].parent.iterdir()] == [entry["folder"].name]  # run-* removed
    cache.close()
    assert not (tmp_path / "preview").exists()


def test_preview_run_is_stopped_at_the_timeout(tmp_path, plugin_copy) -> None:
    from dash_app.preview_runner import run_isolated

    folder = _slow(plugin_copy, 60)
    plugin = load_plugin(folder, "fixture")
    start = time.monotonic()
    result = run_isolated(folder, plugin.package, {}, tmp_path / "out", timeout=3)
    assert time.monotonic() - start < 20
    assert result["status"] == "failed" and "longer than 3 s (HISCI_PREVIEW_TIMEOUT)" in result["error"]


def test_preview_memory_cap_fails_the_run_not_the_server(tmp_path, plugin_copy) -> None:
    from dash_app.preview_runner import run_isolated

    folder = _slow(plugin_copy, 0.1)
    plugin = load_plugin(folder, "fixture")
    result = run_isolated(folder, plugin.package, {}, tmp_path / "out", memory_mb=64)
    assert result["status"] == "failed", result  # the interpreter cannot even import numpy in 64 MB


def test_service_preview_needs_login_and_starts_empty(tmp_path, service_settings, tokens, service) -> None:
    from dash_app import create_dash_app

    stale = service_settings.data_dir / "preview" / "old-run"
    stale.mkdir(parents=True)
    app = create_dash_app(service_settings, service.registry, service)
    assert not stale.exists() and (service_settings.data_dir / "preview").is_dir()
    client = app.server.test_client()
    texts = {n: (FIXTURE_PLUGINS / "slow_plugin" / n).read_text() for n in ("meta.json", "data.json", "ui.json")}
    values = {"hs-pv-meta.value": texts["meta.json"], "hs-pv-data.value": texts["data.json"],
              "hs-pv-ui.value": texts["ui.json"], "hs-lang.data": "en", "hs-token.data": None}
    refused = dash_call(client, "hs-pv-schema.children", values, "hs-pv-ui.value")
    assert refused.status_code == 200
    assert list((service_settings.data_dir / "preview").iterdir()) == []  # nothing written
    assert "log in" in refused.get_data(as_text=True).lower() and "additionalProperties" not in refused.get_data(as_text=True)
    values["hs-token.data"] = tokens.alice
    allowed = dash_call(client, "hs-pv-schema.children", values, "hs-pv-ui.value")
    assert "additionalProperties" in allowed.get_data(as_text=True)  # the schema was built
    assert list((service_settings.data_dir / "preview").iterdir())


def test_hicli_preview_registry_unaffected() -> None:
    settings = Settings(plugin_path=(FIXTURE_PLUGINS,), builtins=False, entry_points=False)
    assert "slow_plugin" in Registry.discover(settings).plugins


pytestmark = pytest.mark.redis
