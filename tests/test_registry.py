"""Discovery from the three sources; one bad plugin never hides the others."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from hisci import Registry, Settings, UnknownPluginError, run_plugin

from .conftest import SAMPLE_IDS, SAMPLES


def test_builtins_are_found_and_valid(isolated_env) -> None:
    registry = Registry.discover(Settings(entry_points=False))
    assert "table_plot" in registry
    assert registry.get("table_plot").source == "builtin"
    builtin_problems = [r for r in registry.problems if r.source == "builtin"]
    assert builtin_problems == [], [str(r.error) for r in builtin_problems]


def test_folder_of_plugins_on_the_plugin_path(registry_from) -> None:
    registry = registry_from(SAMPLES)
    assert sorted(p.id for p in registry) == SAMPLE_IDS
    assert registry.problems == ()


def test_broken_plugin_is_reported_and_others_still_load(registry_from, plugin_copy, tmp_path) -> None:
    root = tmp_path / "mixed"
    plugin_copy("basic-area", root=root)
    plugin_copy("basic-volcano", root=root)
    broken = plugin_copy("basic-heatmap", root=root)
    (broken / "ui.json").write_text("{ not json")
    registry = registry_from(root)
    assert sorted(p.id for p in registry) == ["basic-area", "basic-volcano"]
    (rejected,) = registry.problems
    assert rejected.id == "basic-heatmap"
    assert "invalid JSON at line 1" in str(rejected.error)
    with pytest.raises(UnknownPluginError, match="was found but is invalid"):
        registry.get("basic-heatmap")


def test_duplicate_ids_first_wins_and_both_sources_are_named(registry_from, plugin_copy, tmp_path) -> None:
    first = plugin_copy("basic-area", root=tmp_path / "a")
    second = plugin_copy("basic-area", root=tmp_path / "b")
    registry = registry_from(tmp_path / "a", tmp_path / "b")
    assert registry.get("basic-area").folder == first.resolve()
    (rejected,) = registry.problems
    message = str(rejected.error)
    assert "duplicate plugin id 'basic-area'" in message
    assert str(first.resolve()) in message and str(second.resolve()) in message


def test_plugin_path_from_the_environment(monkeypatch, plugin_copy, tmp_path, isolated_env) -> None:
    one = plugin_copy("basic-area", root=tmp_path / "one")
    plugin_copy("basic-ggdag", root=tmp_path / "many")
    monkeypatch.setenv("HISCI_PLUGIN_PATH", os.pathsep.join([str(one), str(tmp_path / "many")]))
    registry = Registry.discover()
    assert {"basic-area", "basic-ggdag", "table_plot"} <= {p.id for p in registry}
    assert registry.get("basic-ggdag").source == "path"


def test_unknown_id_suggests_the_close_one(isolated_env) -> None:
    registry = Registry.discover(Settings(entry_points=False))
    with pytest.raises(UnknownPluginError, match=r"unknown plugin id 'table_plt' \(did you mean 'table_plot'\?\)"):
        registry.get("table_plt")


def test_hiplot_module_and_tool_address_a_plugin(registry_from) -> None:
    registry = registry_from(SAMPLES)
    assert registry.find_tool("heatmap", "basic").id == "basic-heatmap"
    assert registry.find_tool("gsea").id == "advance-gsea"


def _install_distribution(site: Path, plugin_source: Path) -> None:
    """A real installed distribution: a package folder plus its .dist-info with entry points."""
    import shutil

    package = site / "acme_hisci_plugin"
    shutil.copytree(plugin_source, package, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / "acme_hisci_plugin-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-hisci-plugin\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[hisci.plugins]\nacme = acme_hisci_plugin\n")
    (info / "RECORD").write_text("")


def test_entry_point_plugin_is_discovered_and_runs(monkeypatch, tmp_path, isolated_env) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_distribution(site, Path(__file__).parents[1] / "plugins" / "table_plot")
    monkeypatch.syspath_prepend(str(site))
    registry = Registry.discover(Settings(builtins=False, entry_points=True))
    plugin = registry.get("acme_hisci_plugin")
    assert plugin.source == "entry-point:acme-hisci-plugin"
    assert plugin.package == "acme_hisci_plugin"
    result = run_plugin(plugin, example=True, output_dir=tmp_path / "out")
    assert result.ok, result.error
    assert result.summary["rows"] == 36
    assert "acme_hisci_plugin.plugin" in sys.modules


def test_listing_never_imports_plugin_code(registry_from, plugin_copy, tmp_path) -> None:
    folder = plugin_copy("table_plot", new_id="exploding", root=tmp_path / "p")
    (folder / "plugin.py").write_text("raise SystemExit('imported at listing time')\n")
    registry = registry_from(tmp_path / "p")
    assert registry.get("exploding").summary()["runnable"] is True
