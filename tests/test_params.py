"""Parameter validation: defaults, typed --set values, and rejections with pointers."""

from __future__ import annotations

import pytest

from hisci import ParamsError, Registry, Settings
from hisci.assignments import parse_assignments


@pytest.fixture
def table_plot(isolated_env):
    return Registry.discover(Settings(entry_points=False)).get("table_plot")


def test_defaults_are_filled(table_plot) -> None:
    params = table_plot.validate_request({"textarea": {"datTable": "a\tb\n1\t2\n"}})
    assert params["extra"] == {"chart_type": "scatter", "opacity": 0.8, "log_y": False,
                               "color": "#1f77b4", "title": "", "marker_size": 8}
    assert params["general"]["imageExportType"] == ["plotly", "png"]


def test_hiplot_shaped_request_is_accepted(table_plot) -> None:
    params = table_plot.validate_request(
        {"params": {"textarea": {"datTable": "a\tb\n1\t2\n"}, "config": {"extra": {"opacity": 0.5}}}})
    assert params["extra"]["opacity"] == 0.5


def test_every_problem_is_reported_with_pointer_given_and_allowed(table_plot) -> None:
    with pytest.raises(ParamsError) as info:
        table_plot.validate_request({"textarea": {"datTable": "a\tb\n"},
                                     "extra": {"opacity": 3, "chart_type": "pie", "log_y": "maybe"}})
    problems = {p.pointer: p for p in info.value.problems}
    assert set(problems) == {"/extra/opacity", "/extra/chart_type", "/extra/log_y"}
    assert problems["/extra/opacity"].given == 3
    assert "out of range (maximum 1)" in problems["/extra/opacity"].message
    assert problems["/extra/chart_type"].allowed == ["scatter", "line", "bar", "box"]


def test_unknown_parameter_suggests_the_close_one(table_plot) -> None:
    with pytest.raises(ParamsError, match=r"unknown parameter\(s\) 'opacty' \(did you mean 'opacity'\?\)"):
        table_plot.validate_request({"textarea": {"datTable": "a\tb\n"}, "extra": {"opacty": 0.5}})


def test_missing_required_input(table_plot) -> None:
    with pytest.raises(ParamsError) as info:
        table_plot.validate_request({})
    (problem,) = info.value.problems
    assert problem.pointer == "/data/datTable"
    assert "required input 'datTable' was not given" in problem.message
    # core's hint is neutral; each front end names its own way (hicli: --input)
    assert problem.hint == "give a file for input 'datTable' or paste the table into textarea.datTable"
    assert "--" not in problem.hint


def test_switch_accepts_hiplot_zero_one(table_plot) -> None:
    params = table_plot.validate_request({"textarea": {"datTable": "a\tb\n"}, "extra": {"log_y": 1}})
    assert params["extra"]["log_y"] is True


@pytest.mark.parametrize("text, expected", [
    ("extra.opacity=0.5", {"extra": {"opacity": 0.5}}),
    ("marker_size=12", {"extra": {"marker_size": 12}}),
    ("extra.log_y=yes", {"extra": {"log_y": True}}),
    ("extra.chart_type=bar", {"extra": {"chart_type": "bar"}}),
    ("extra.title=42", {"extra": {"title": 42}}),
    ("dataArg.datTable=dose,response", {"dataArg": {"datTable": [{"value": "dose"}, {"value": "response"}]}}),
    ("general.size={\"width\": 4}", {"general": {"size": {"width": 4}}}),
], ids=["number", "bare-key", "boolean", "enum", "text-number", "dataArg-list", "json"])
def test_set_values_are_parsed_by_schema_type(table_plot, text, expected) -> None:
    assert parse_assignments([text], table_plot.parameter_schema()) == expected


def test_set_lists_follow_the_item_type(registry_from) -> None:
    from .conftest import SAMPLES

    gsea = registry_from(SAMPLES).get("advance-gsea")
    schema = gsea.parameter_schema()
    multiple = [k for k, v in schema["properties"]["extra"]["properties"].items() if v.get("type") == "array"]
    assert multiple
    request = parse_assignments([f"extra.{multiple[0]}=a,b"], schema)
    assert request["extra"][multiple[0]] == ["a", "b"]


def test_set_without_equals_is_an_error(table_plot) -> None:
    with pytest.raises(ParamsError, match="has no '='"):
        parse_assignments(["extra.opacity"], table_plot.parameter_schema())


def test_hidden_field_values_are_dropped_server_side(table_plot) -> None:
    """marker_size shows only for scatter (its if_func): for a line chart the value is
    dropped and the default stands, as Hiplot's form would send it."""
    table = {"datTable": "a\tb\n1\t2\n"}
    line = table_plot.validate_request({"textarea": table, "extra": {"chart_type": "line", "marker_size": 20}})
    assert line["extra"]["marker_size"] == 8
    scatter = table_plot.validate_request({"textarea": table, "extra": {"chart_type": "scatter", "marker_size": 20}})
    assert scatter["extra"]["marker_size"] == 20
