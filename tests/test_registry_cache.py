"""The registry cache: unchanged folders are not validated again; changes are always seen."""

from __future__ import annotations

import json

import pytest

from hisci import Registry, Settings
from hisci.plugin import CachedPlugin
from hisci.registry_cache import FILE_NAME, RegistryCache


@pytest.fixture
def settings_for(tmp_path):
    def make(*folders):
        return Settings(plugin_path=tuple(folders), builtins=False, entry_points=False, cache_dir=tmp_path / "cache")
    return make


def test_second_discovery_comes_from_the_cache_and_matches(plugin_copy, settings_for):
    folder = plugin_copy("basic-heatmap")
    plugin_copy("table_plot")
    settings = settings_for(folder.parent)
    first = Registry.discover(settings)
    assert (settings.cache_dir / FILE_NAME).is_file()
    second = Registry.discover(settings)
    assert all(isinstance(p, CachedPlugin) for p in second)
    for plugin in first:
        again = second.get(plugin.id)
        assert again.summary() == plugin.summary()
        assert again.parameter_schema() == plugin.parameter_schema()
        assert again.example_request() == plugin.example_request()
        assert again.raw == plugin.raw and again.warnings == plugin.warnings


def test_a_changed_file_is_validated_again(plugin_copy, settings_for):
    folder = plugin_copy("table_plot")
    settings = settings_for(folder.parent)
    assert "table_plot" in Registry.discover(settings)
    ui = json.loads((folder / "ui.json").read_text())
    ui["extra"]["opacity"]["type"] = "knob"
    (folder / "ui.json").write_text(json.dumps(ui))
    registry = Registry.discover(settings)
    assert "table_plot" not in registry and "knob" in str(registry.problems[0].error)
    ui["extra"]["opacity"]["type"] = "slider"
    ui["extra"]["opacity"]["label"] = "Opacity (changed)"
    (folder / "ui.json").write_text(json.dumps(ui))
    plugin = Registry.discover(settings).get("table_plot")
    assert not isinstance(plugin, CachedPlugin) and plugin.ui.extra["opacity"].label == "Opacity (changed)"


def test_a_stale_or_corrupt_cache_is_rebuilt(plugin_copy, settings_for, monkeypatch):
    folder = plugin_copy("table_plot")
    settings = settings_for(folder.parent)
    Registry.discover(settings)
    monkeypatch.setattr("hisci.registry_cache.code_version", lambda: ("another hisci",))
    assert not isinstance(Registry.discover(settings).get("table_plot"), CachedPlugin)
    (settings.cache_dir / FILE_NAME).write_bytes(b"not a pickle")
    assert not RegistryCache.open(settings.cache_dir).entries
    assert "table_plot" in Registry.discover(settings)
    assert isinstance(Registry.discover(settings).get("table_plot"), CachedPlugin)


def test_no_cache_writes_nothing(plugin_copy, tmp_path):
    folder = plugin_copy("table_plot")
    settings = Settings.from_env({"HISCI_PLUGIN_PATH": str(folder.parent), "HISCI_NO_CACHE": "1",
                                  "HISCI_NO_BUILTINS": "1", "HISCI_NO_ENTRY_POINTS": "1"})
    assert settings.cache_dir is None
    assert "table_plot" in Registry.discover(settings)
    assert not isinstance(Registry.discover(settings).get("table_plot"), CachedPlugin)


@pytest.mark.parametrize("args", [["status", "j1"], ["logs", "j1"], ["fetch", "j1", "-o", "x"], ["cancel", "j1"],
                                  ["jobs"], ["retry", "j1"]])
def test_service_commands_never_load_the_registry(cli, monkeypatch, args):
    from hicli.main import cli as hicli

    def refuse(*_a, **_k):
        raise AssertionError("the registry was loaded")

    monkeypatch.setattr(Registry, "discover", refuse)
    monkeypatch.setenv("HISCI_URL", "http://127.0.0.1:9")  # nothing listens: the command fails to connect
    monkeypatch.setenv("HISCI_TOKEN", "x")
    result = cli.invoke(hicli, args)
    assert result.exit_code == 4, result.output
    assert "the registry was loaded" not in result.output
