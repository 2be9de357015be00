"""build_form: every Hiplot sample and built-in plugin draws, one input per declared widget;
values become requests; validate_request problems land on their fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from dash_app.forms import (
    build_form,
    check,
    collect,
    example_values,
    field_list,
    form_inputs,
    problem_target,
)
from dash_app.widgets import WIDGET_RENDERERS, table_from_text, table_to_text
from hisci import Registry, Settings
from hisci.models.ui import WIDGET_TYPES

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:dash.development.base_component")

SAMPLES = Path(__file__).parent / "data" / "hiplot-samples"
SAMPLE_IDS = sorted(p.name for p in SAMPLES.iterdir() if p.is_dir())
BUILTIN = Path(__file__).parents[1] / "plugins"
BUILTIN_IDS = sorted(p.name for p in BUILTIN.iterdir() if (p / "ui.json").exists())


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover(Settings(plugin_path=tuple(SAMPLES / s for s in SAMPLE_IDS),
                                      builtins=True, entry_points=False))


def declared(plugin) -> list[tuple[str, str]]:
    ui = plugin.ui
    out = [("data", k) for k in ui.data] + [("extra", k) for k in ui.extra]
    out += [("dataArg", f"{table}/{i}") for table, items in ui.dataArg.items() for i in range(len(items))]
    return sorted(out)


def test_every_widget_type_has_a_renderer():
    assert set(WIDGET_RENDERERS) == set(WIDGET_TYPES)


@pytest.mark.parametrize("plugin_id", SAMPLE_IDS + BUILTIN_IDS)
@pytest.mark.parametrize("lang", ["en", "zh_cn"])
def test_build_form_one_input_per_widget(registry, plugin_id, lang):
    rejected = [str(r.error) for r in registry.problems if r.id == plugin_id]
    assert plugin_id in registry, rejected or "missing"
    plugin = registry.get(plugin_id)
    layout = build_form(plugin, lang)
    inputs = form_inputs(layout)
    assert sorted((sec, key) for _, sec, key in inputs if sec != "general") == declared(plugin)
    general = {key for _, sec, key in inputs if sec == "general"}
    assert general <= set(plugin.data.config.get("general") or {})
    if plugin.params.examples:
        assert form_inputs(build_form(plugin, lang, values=example_values(plugin))) == inputs


def test_samples_all_load(registry):
    assert set(SAMPLE_IDS) <= set(registry.plugins), [str(r.error) for r in registry.problems]


def _form_values(plugin, params):
    values, tables, files = {}, {}, {}
    for section, key, widget in field_list(plugin):
        if section == "data" and widget.type == "hiplot-textarea":
            tables[key] = table_from_text((params.get("textarea") or {}).get(key, ""))
        elif section == "data" and widget.type == "cloud-file":
            files[key] = params["data"].get(key)
        elif section == "dataArg":
            table, _, i = key.partition("/")
            values[(section, key)] = params["dataArg"][table][int(i)]["value"]
        else:
            raw = params[section].get(key)
            if widget.type == "switch":
                raw = ["on"] if raw else []
            values[(section, key)] = raw
    return values, tables, files


def test_table_plot_example_is_valid_and_conditional_fields(registry):
    plugin = registry.get("table_plot")
    values, tables, files = _form_values(plugin, example_values(plugin))
    request, _ = collect(plugin, values, tables, files)
    assert check(plugin, request) == ({}, [])
    assert request["extra"]["marker_size"] == 8
    assert request["general"]["imageExportType"] == ["plotly", "png"]
    assert request["dataArg"]["datTable"][0] == {"value": "dose"}
    assert request["textarea"]["datTable"].startswith("sample\tdose")
    values[("extra", "chart_type")] = "bar"
    request, _ = collect(plugin, values, tables, files)
    assert "marker_size" not in request["extra"]  # hidden by its if_func
    values[("extra", "color")] = "not a colour!"
    request, _ = collect(plugin, values, tables, files)
    field_errors, form_errors = check(plugin, request)
    assert list(field_errors) == [("extra", "color")] and not form_errors


def test_empty_required_table_is_a_field_error(registry):
    plugin = registry.get("table_plot")
    values, tables, files = _form_values(plugin, plugin.params.fill_defaults({}))
    request, _ = collect(plugin, values, tables, files)
    field_errors, _ = check(plugin, request)
    assert ("data", "datTable") in field_errors


def test_table_round_trip():
    text = "a\tb\n1\t2\n3\t4\n"
    columns, data = table_from_text(text)
    assert table_to_text(columns, data) == text
    assert table_to_text(*table_from_text("")) == ""
    assert table_from_text("x,y\n1,2\n")[0][1]["name"] == "y"


def test_problem_targets():
    known = {("extra", "a/b"), ("data", "t"), ("dataArg", "t/1")}
    assert problem_target("/extra/a~1b", known) == ("extra", "a/b")
    assert problem_target("/textarea/t", known) == ("data", "t")
    assert problem_target("/dataArg/t/1/value", known) == ("dataArg", "t/1")
    assert problem_target("/extra", known) is None


def test_preview_cache_problems_pointers_and_confined_example(tmp_path):
    import io
    import json
    import zipfile

    from dash_app.pages.preview import PreviewCache, _from_upload, example_inputs

    folder = Path(__file__).parents[1] / "plugins" / "table_plot"
    texts = {name: (folder / name).read_text("utf-8") for name in ("meta.json", "data.json", "ui.json")}
    from hisci import load_plugin

    base = load_plugin(folder)
    cache = PreviewCache()
    assert any(p.pointer == "/runtime/entry" for p in cache.build(texts, None)["problems"])  # no code
    good = cache.build(texts, base)
    assert good["problems"] == [] and good["plugin"].id == "table_plot"
    ui = json.loads(texts["ui.json"])
    ui["extra"]["opacity"]["if_func"] = "this.params.config.extra.chart_type ==="
    ui["extra"]["title"]["type"] = "text-feild"
    broken = cache.build({**texts, "ui.json": json.dumps(ui)}, base)
    pointers = {p.pointer for p in broken["problems"]}
    assert {"/extra/opacity/if_func", "/extra/title/type"} <= pointers
    assert cache.plugin(broken["key"]) is None or cache.plugin(broken["key"]).id == "table_plot"
    data = json.loads(texts["data.json"])
    data["exampleData"]["config"]["data"] = {"datTable": {"value": "/etc/passwd", "link": "/etc/passwd"}}
    sneaky = cache.build({**texts, "data.json": json.dumps(data)}, base)
    with pytest.raises(Exception, match="inside the plugin folder"):
        example_inputs(sneaky["plugin"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in texts.items():
            archive.writestr(f"table_plot/{name}", text)
    import base64

    encoded = "data:application/zip;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert _from_upload(["plugin.zip"], [encoded]) == texts


def test_preview_runs_example_with_linked_code(tmp_path):
    import json

    from dash_app.pages.preview import PreviewCache, example_inputs
    from hisci import load_plugin, run_plugin

    base = load_plugin(Path(__file__).parents[1] / "plugins" / "table_plot")
    texts = {name: (base.folder / name).read_text("utf-8") for name in ("meta.json", "data.json", "ui.json")}
    data = json.loads(texts["data.json"])
    data["exampleData"]["config"]["extra"]["title"] = "edited in the preview"
    entry = PreviewCache().build({**texts, "data.json": json.dumps(data)}, base)
    assert entry["problems"] == []
    result = run_plugin(entry["plugin"], example=True, inputs=example_inputs(entry["plugin"]),
                        output_dir=tmp_path / "out")
    assert result.ok, result.error
    assert "edited in the preview" in (tmp_path / "out" / "chart.json").read_text("utf-8")


def test_run_again_relinks_stored_inputs(registry, tmp_path):
    from types import SimpleNamespace

    from dash_app.pages.plugin_form import rerun_request

    plugin = registry.get("table_plot")
    upload = tmp_path / "uploads" / ("ab" * 32) / "table.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text("x,y\n1,2\n")
    env = SimpleNamespace(settings=SimpleNamespace(data_dir=tmp_path))
    example = plugin.folder / "example"
    inside = next(example.iterdir()) if example.is_dir() and any(example.iterdir()) else plugin.folder / "meta.json"
    params = {"data": {"a": {"value": "table.csv", "link": str(upload)},
                       "b": {"value": "x", "link": [str(inside)]},
                       "c": {"value": "", "link": "/etc/passwd"}}}
    out = rerun_request(env, plugin, params)["data"]
    assert out["a"]["link"] == "upload:" + "ab" * 32
    assert out["b"]["link"] == [str(inside.relative_to(plugin.folder))]
    assert out["c"]["link"] == "/etc/passwd"  # left for the service to refuse


def test_select_items_that_need_a_missing_module_are_hidden(isolated_env) -> None:
    """ct_recon offers tomopy_gridrec only where `import tomopy` works (not here)."""
    import importlib.util

    from dash_app.widgets import options
    from hisci import Registry, Settings

    widget = Registry.discover(Settings(entry_points=False)).get("ct_recon").ui.extra["algorithm"]
    values = [o["value"] for o in options(widget.items)]
    assert importlib.util.find_spec("tomopy") is None
    assert values == ["gridrec", "fbp", "sirt", "cgls"]
