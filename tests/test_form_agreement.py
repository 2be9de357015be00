"""The web form and the server judge visibility alike (hisci.form is the one logic).

Every Hiplot sample and built-in plugin, for its defaults, each example and each switch
flipped: the user sets a value in every parameter field; the form (dash_app.forms.collect)
keeps the values of the fields it shows, and the server (Plugin.validate_request) must keep
exactly those and fall back to the default for the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dash_app.forms import collect
from dash_app.widgets import table_from_text
from hisci import Registry, Settings
from hisci.form import active_fields

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:dash.development.base_component")

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(p for root in ("hiplot-samples", "hiplot-quirks") for p in (DATA / root).iterdir()
                 if (p / "meta.json").is_file())
BUILTIN_IDS = sorted(p.name for p in (Path(__file__).parents[1] / "plugins").iterdir() if (p / "meta.json").is_file())
GSEA_CLS = "6 3 1\n# A B C\nA A B B C C\n"  # three classes: unique_line has 3 items


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover(Settings(plugin_path=tuple(SAMPLES), builtins=True, entry_points=False))


def _other_value(widget: Any, default: Any) -> Any:
    """A valid value different from the default, or None when there is no safe one."""
    kind = widget.type
    if kind == "switch":
        return not bool(default)
    if kind == "slider" and widget.min is not None and widget.max is not None and not widget.prop("max_func"):
        return widget.max if default != widget.max else widget.min
    if kind in ("select", "autocomplete") and widget.items and not widget.prop("items_func") and not widget.multiple:
        values = [i.get("value", i.get("text")) if isinstance(i, dict) else i for i in widget.items]
        return next((v for v in values if v != default and not isinstance(v, (dict, list))), None)
    if kind == "text-field" and isinstance(default, str):
        return default + "x"
    if kind == "text-field" and isinstance(default, (int, float)) and not isinstance(default, bool):
        return default + 1
    if kind == "color-picker":
        return "#123456" if default != "#123456" else "#654321"
    return None


def _requests(plugin) -> list[dict[str, Any]]:
    base = [{}] + [plugin.example_request(i) for i in range(len(plugin.params.examples))]
    flips = []
    for key, widget in plugin.ui.extra.items():
        if widget.type == "switch":
            default = plugin.params.defaults["extra"].get(key)
            flips.append({"extra": {key: not bool(default)}})
    return base + flips


def _files(plugin) -> dict[str, dict[str, str]]:
    if plugin.id == "advance-gsea":
        return {"2-cls": {"value": "groups.cls", "link": "upload:groups", "text": GSEA_CLS}}
    return {}


def _with_inputs(plugin, start: dict[str, Any]) -> dict[str, Any]:
    """``start`` with every required input given (visibility is not about file checks)."""
    start = {s: dict(v) if isinstance(v, dict) else v for s, v in start.items()}
    for key, widget in plugin.ui.data.items():
        if not widget.required:
            continue
        if widget.type == "hiplot-textarea":
            start.setdefault("textarea", {}).setdefault(key, "a\tb\n1\t2\n")
        elif not (start.get("data") or {}).get(key):
            start.setdefault("data", {})[key] = "input.txt" if widget.type in ("codemirror", "combobox") else {
                "value": "input.txt", "link": "input.txt"}
    return start


def _agree(plugin, start: dict[str, Any]) -> tuple[set[str], set[str]]:
    start = _with_inputs(plugin, start)
    params = plugin.params.fill_defaults(start)
    files = _files(plugin)
    user = {}
    for key, widget in plugin.ui.extra.items():
        value = _other_value(widget, params["extra"].get(key))
        user[key] = value if value is not None else params["extra"].get(key)
    values = {("extra", k): v for k, v in user.items()}
    tables = {k: table_from_text(v) for k, v in (params.get("textarea") or {}).items() if v}
    form_request, _ = collect(plugin, values, tables, files)
    kept_by_form = {k for k in user if k in form_request.get("extra", {})}
    request = {**{s: v for s, v in start.items() if s != "extra"}, "extra": {**start.get("extra", {}), **user}}
    texts = {k: v["text"] for k, v in files.items()}
    served = plugin.validate_request(request, files=texts)
    defaults = plugin.params.defaults["extra"]
    changed = {k for k in user if user[k] != params["extra"].get(k) and user[k] != defaults.get(k)}
    kept_by_server = {k for k in changed if served["extra"].get(k) == user[k]}
    return kept_by_form & changed, kept_by_server, changed


@pytest.mark.parametrize("plugin_id", [p.name for p in SAMPLES] + BUILTIN_IDS)
def test_form_and_server_agree_on_visibility(registry, plugin_id):
    plugin = registry.get(plugin_id)
    tried = set()
    for start in _requests(plugin):
        by_form, by_server, changed = _agree(plugin, start)
        assert by_form == by_server, (start, sorted(by_form ^ by_server))
        tried |= changed
    settable = {k for k, w in plugin.ui.extra.items() if w.type in ("switch", "text-field", "color-picker")}
    assert settable <= tried


def test_gsea_value_set_after_a_cls_upload_is_kept(registry):
    gsea = registry.get("advance-gsea")
    request = _with_inputs(gsea, {"extra": {"enable_versus_rest": True},
                                  "data": {"2-cls": {"value": "g.cls", "link": "g.cls"}}})
    assert gsea.validate_request(request, files={"2-cls": GSEA_CLS})["extra"]["enable_versus_rest"] is True
    # a .cls of two classes hides it in the form: the server drops the value too
    two = "4 2 1\n# A B\nA A B B\n"
    assert gsea.validate_request(request, files={"2-cls": two})["extra"]["enable_versus_rest"] is False
    # without the file's text the server cannot know, so it keeps what the user set
    assert gsea.validate_request(request)["extra"]["enable_versus_rest"] is True


def test_the_form_hides_what_the_server_prunes_for_table_plot(registry):
    plot = registry.get("table_plot")
    shown = active_fields(plot.ui, plot.params.fill_defaults({"extra": {"chart_type": "box"}}), files={})["extra"]
    served = plot.validate_request({"textarea": {"datTable": "a\tb\n1\t2\n"},
                                    "extra": {"chart_type": "box", "marker_size": 20}})
    assert ("marker_size" in shown) == (served["extra"]["marker_size"] == 20)
