"""Hiplot's leniency: real plugins with quirks Hiplot accepts load, with warnings."""

from __future__ import annotations

from pathlib import Path

from hicli.main import cli as hicli
from hisci import Registry, Settings
from hisci.leniency import empty_value
from hisci.plugin import load_plugin

DATA = Path(__file__).parent / "data"
QUIRKS = DATA / "hiplot-quirks"
REAL = sorted(p for root in (DATA / "hiplot-samples", QUIRKS) for p in root.iterdir() if (p / "meta.json").is_file())


def test_every_real_hiplot_folder_loads():
    registry = Registry.discover(Settings(plugin_path=tuple(REAL), builtins=False, entry_points=False))
    assert not registry.problems, [str(r.error) for r in registry.problems]
    assert len(registry) == len(REAL) == 11


def test_stub_widgets_are_hidden_and_keep_their_data_json_value():
    plugin = load_plugin(QUIRKS / "basic-barplot-ggpubr")
    assert "add" not in plugin.ui.extra and "error.plot" not in plugin.ui.extra
    assert set(plugin.ui.extra) == {"combine", "merge", "color"}
    stubs = {w.pointer for w in plugin.warnings}
    assert {"/extra/add", "/extra/add.params", "/extra/error.plot"} <= stubs and len(stubs) == 25
    warning = next(w for w in plugin.warnings if w.pointer == "/extra/add")
    assert warning.file.endswith("ui.json") and "keeps its data.json value 'mean_se'" in warning.message
    params = plugin.validate_request(plugin.example_request())
    assert params["extra"]["add"] == "mean_se" and params["extra"]["error.plot"] == "errorbar"


def test_unknown_example_keys_are_ignored_with_a_warning():
    plugin = load_plugin(QUIRKS / "advance-ideogram-heat")
    (warning,) = plugin.warnings
    assert warning.pointer == "/exampleData/config/extra/ylab" and warning.file.endswith("data.json")
    request = plugin.example_request()
    assert "ylab" not in request.get("extra", {})
    assert plugin.validate_request(request)["extra"]["species"] == "hg38"


def test_a_widget_without_default_starts_from_the_empty_value_of_its_type(plugin_copy, registry_from):
    def drop_defaults(document):
        for key in ("opacity", "log_y", "title"):
            del document["params"]["config"]["extra"][key]

    folder = plugin_copy("table_plot", "no_defaults", edit={"data.json": drop_defaults})
    registry = registry_from(folder.parent)
    plugin = registry.get("no_defaults")
    assert {w.pointer for w in registry.warnings} == {
        f"/params/config/extra/{k}" for k in ("opacity", "log_y", "title")}
    defaults = plugin.params.defaults["extra"]
    assert (defaults["opacity"], defaults["log_y"], defaults["title"]) == (0.1, False, "")


def test_empty_values():
    assert empty_value({"type": "select", "multiple": True}) == []
    assert empty_value({"type": "range-slider", "min": 1, "max": 9}) == [1, 9]
    assert empty_value({"type": "color-picker"}) == ""


def test_what_breaks_a_form_is_still_refused(plugin_copy, registry_from):
    folder = plugin_copy("table_plot", "typeless", edit={"ui.json": lambda d: d["extra"]["opacity"].pop("type")})
    registry = registry_from(folder.parent)
    assert [r.id for r in registry.problems] == ["typeless"]


def test_validate_prints_warnings_and_strict_fails(cli):
    folder = str(QUIRKS / "advance-ideogram-heat")
    result = cli.invoke(hicli, ["validate", folder])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("warn ") and "exampleData sets 'ylab'" in result.output
    assert cli.invoke(hicli, ["validate", "--strict", folder]).exit_code == 1


def test_list_marks_plugins_with_warnings(cli, monkeypatch):
    monkeypatch.setenv("HISCI_PLUGIN_PATH", str(QUIRKS))
    result = cli.invoke(hicli, ["list"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("ideogram") or "advance-ideogram-heat" in x)
    assert "1 warning(s)" in line


def test_preview_and_catalogue_show_the_warnings(tmp_path):
    from dash_app.pages.catalogue import card
    from dash_app.pages.preview import PreviewCache

    texts = {name: (QUIRKS / "advance-ideogram-heat" / name).read_text("utf-8")
             for name in ("meta.json", "data.json", "ui.json")}
    entry = PreviewCache(root=tmp_path).build(texts, None)
    assert entry["problems"] == [] and [w.pointer for w in entry["warnings"]] == ["/exampleData/config/extra/ylab"]

    class Env:
        @staticmethod
        def href(path):
            return path

    html = str(card(Env(), load_plugin(QUIRKS / "advance-ideogram-heat"), "en").to_plotly_json())
    assert "1 warning(s)" in html and "exampleData sets" in html


def test_real_widget_without_default():
    plugin = load_plugin(QUIRKS / "basic-agmin-boxplot")
    (warning,) = plugin.warnings
    assert warning.pointer == "/params/config/extra/test_groups"
    assert plugin.params.defaults["extra"]["test_groups"] == []  # a multiple combobox starts empty
