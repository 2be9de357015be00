"""Broken plugin folders: each defect gives the expected file, pointer and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from hisci import PluginLoadError, load_plugin


def _load_problems(folder: Path) -> list:
    with pytest.raises(PluginLoadError) as info:
        load_plugin(folder)
    return info.value.problems


def test_missing_required_field(plugin_copy) -> None:
    folder = plugin_copy("table_plot", edit={"meta.json": lambda d: d.pop("name") and d})
    (problem,) = _load_problems(folder)
    assert problem.file.endswith("meta.json")
    assert problem.pointer == ""
    assert "required field 'name' is missing" in problem.message


def test_wrong_type(plugin_copy) -> None:
    folder = plugin_copy("table_plot", edit={"meta.json": lambda d: d.update(tag="vue") or d})
    (problem,) = _load_problems(folder)
    assert problem.pointer == "/tag"
    assert "expected array, got str 'vue'" in problem.message


def test_unknown_widget_type_suggests_the_close_one(plugin_copy) -> None:
    def typo(ui):
        ui["extra"]["opacity"]["type"] = "sliderr"

    folder = plugin_copy("table_plot", edit={"ui.json": typo})
    (problem,) = _load_problems(folder)
    assert problem.file.endswith("ui.json")
    assert problem.pointer == "/extra/opacity/type"
    assert "unknown widget type 'sliderr' (did you mean 'slider'?)" in problem.message
    assert "Known: slider, range-slider, switch" in problem.message
    assert str(problem).startswith(f"{folder / 'ui.json'}: /extra/opacity/type: unknown widget type")


def test_select_default_not_among_items(plugin_copy) -> None:
    folder = plugin_copy("table_plot", edit={"data.json": lambda d: d["params"]["config"]["extra"].update(
        chart_type="scatterr") or d})
    problems = _load_problems(folder)
    assert problems[0].pointer == "/extra/chart_type"
    assert "default 'scatterr' is not among the items (did you mean 'scatter'?)" in problems[0].message
    assert problems[0].allowed == ["scatter", "line", "bar", "box"]


def test_slider_default_out_of_bounds(plugin_copy) -> None:
    folder = plugin_copy("table_plot", edit={"data.json": lambda d: d["params"]["config"]["extra"].update(
        opacity=1.5) or d})
    problems = _load_problems(folder)
    assert problems[0].pointer == "/extra/opacity"
    assert "slider default 1.5 is outside [0.1, 1]" in problems[0].message


def test_bad_json_syntax_reports_line_and_column(plugin_copy) -> None:
    folder = plugin_copy("table_plot")
    (folder / "ui.json").write_text('{\n  "data": {},\n  "extra": {"a": 1,}\n}\n')
    (problem,) = _load_problems(folder)
    assert problem.file.endswith("ui.json")
    assert "invalid JSON at line 3, column 20" in problem.message


def test_missing_entry_module(plugin_copy) -> None:
    folder = plugin_copy("table_plot")
    (folder / "plugin.py").unlink()
    (problem,) = _load_problems(folder)
    assert problem.pointer == "/runtime/entry"
    assert "entry module 'plugin' not found" in problem.message


def test_unknown_runtime_key_suggests(plugin_copy) -> None:
    folder = plugin_copy("table_plot", edit={"meta.json": lambda d: d["runtime"].update(queu="gpu") or d})
    (problem,) = _load_problems(folder)
    assert problem.pointer == "/runtime"
    assert "'queu' (did you mean 'queue'?)" in problem.message


def test_all_problems_are_reported_at_once(plugin_copy) -> None:
    def two_defects(ui):
        ui["extra"]["opacity"]["type"] = "sliderr"
        ui["extra"]["log_y"]["type"] = "swich"

    folder = plugin_copy("table_plot", edit={"ui.json": two_defects})
    pointers = [p.pointer for p in _load_problems(folder)]
    assert pointers == ["/extra/log_y/type", "/extra/opacity/type"]


def test_unparsable_expression_is_a_problem_at_its_pointer(plugin_copy) -> None:
    folder = plugin_copy("table_plot", edit={"ui.json": lambda u: u["extra"]["marker_size"].update(
        if_func="this.params.config.extra.chart_type === ")})
    problems = _load_problems(folder)
    assert [p.pointer for p in problems] == ["/extra/marker_size/if_func"]
    assert problems[0].file.endswith("ui.json")


def test_example_that_does_not_validate_is_reported(plugin_copy) -> None:
    folder = plugin_copy("table_plot", edit={"data.json": lambda d: d["exampleData"]["config"].update(
        extra={"opacity": 5})})
    (problem,) = _load_problems(folder)
    assert problem.pointer == "/exampleData/config/extra/opacity"
    assert problem.message.startswith("exampleData does not validate: 5 is out of range")
