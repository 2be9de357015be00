"""The safe evaluator of Hiplot's conditional ui.json attributes (if, if_func, items_func, ...)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hisci.expressions import ExpressionError, check_expression, check_ui_expressions, evaluate
from hisci.form import active_fields, form_context, prune_hidden, visible

SAMPLES = Path(__file__).parent / "data" / "hiplot-samples"


def ctx(extra=None, dataArg=None, textarea=None, data=None, files=None):
    params = {"textarea": textarea or {}, "data": data or {}, "dataArg": dataArg or {},
              "general": {}, "extra": extra or {}}
    return form_context(params, files=files)


PAPER = ("['combine-append','split'].indexOf(this.params.config.extra.mode) === -1 && "
         "this.params.config.extra.paper_size === 'custom'")

# The real expressions listed in the Hiplot research (shared/research/hiplot.md, section 3).
REAL = [
    ("this.params.config.extra.chart_type === 'scatter'", {"chart_type": "scatter"}, True),
    ("this.params.config.extra.chart_type === 'scatter'", {"chart_type": "bar"}, False),
    ("this.params.config.extra.color === 'custom'", {"color": "custom"}, True),
    ("this.params.config.extra.color === 'custom'", {"color": "default"}, False),
    ("this.params.config.extra.mode.indexOf('MeSH') !== -1", {"mode": ["BP", "MeSH"]}, True),
    ("this.params.config.extra.mode.indexOf('MeSH') !== -1", {"mode": ["BP", "KEGG"]}, False),
    (PAPER, {"mode": "merge", "paper_size": "custom"}, True),
    (PAPER, {"mode": "split", "paper_size": "custom"}, False),
    (PAPER, {"mode": "merge", "paper_size": "a4"}, False),
]


@pytest.mark.parametrize("expression,extra,expected", REAL)
def test_real_if_func_expressions(expression, extra, expected):
    assert bool(evaluate(expression, ctx(extra))) is expected


def test_data_arg_value_and_table_header():
    expr = "this.params.config.dataArg.datTable[2].value"
    chosen = ctx(dataArg={"datTable": [{"value": "a"}, {"value": "b"}, {"value": "grp"}]})
    empty = ctx(dataArg={"datTable": [{"value": "a"}, {"value": "b"}, {"value": ""}]})
    assert evaluate(expr, chosen) == "grp"
    assert not evaluate(expr, empty)
    two = ctx(textarea={"datTable": "x\ty\n1\t2\n"})
    three = ctx(textarea={"datTable": "x\ty\tz\n1\t2\t3\n"})
    assert evaluate("this.tableHeader['datTable'].length === 2", two) is True
    assert evaluate("this.tableHeader['datTable'].length === 2", three) is False
    assert evaluate("this.tableHeader['1-data']", ctx(textarea={"1-data": "len\tsupp\n1\tVC\n"})) == ["len", "supp"]


def test_helpers():
    table = "gene\tlogFC\nTP53\t1\nEGFR\t2\nTP53\t3\n"
    assert evaluate("this.selectCols('datTable', 0)", ctx(textarea={"datTable": table})) == ["TP53", "EGFR"]
    c = ctx(data={"graph": "dag {\n x -> y\n z -> y\n}"})
    assert evaluate("this.getDataAreaFactors('graph')", c) == ["x", "y", "z"]
    cls = "6 3 1\n# A B C\nA A B B C C\n"
    g = ctx(files={"2-cls": cls})
    assert evaluate("this.retriveUniqueLine('2-cls', 3)", g) == ["A", "B", "C"]
    assert evaluate("this.unique_line.length > 2", g) is True
    assert evaluate("this.unique_line.length > 2", ctx()) is False


def test_javascript_semantics():
    c = ctx({"n": 3, "flag": False, "items": [], "s": ""})
    assert evaluate("this.params.config.extra.n > 2 ? 'col-12 col-md-6' : 'col-12'", c) == "col-12 col-md-6"
    assert evaluate("!this.params.config.extra.flag", c) is True
    assert evaluate("this.params.config.extra.items ? 1 : 0", c) == 1  # [] is truthy in JS
    assert evaluate("this.params.config.extra.s || 'none'", c) == "none"
    assert evaluate("this.params.config.extra.missing.deeper", c) is None
    assert evaluate("1 === 1.0 && '1' !== 1 && '1' == 1 && null == undefined", c) is True
    assert evaluate("this.params.config.extra.n * 10 + 1", c) == 31
    assert evaluate("[1, 2, 3].length", c) == 3


@pytest.mark.parametrize("bad", [
    "this.params.config.extra.color === ",
    "this.params.config.extra.color === 'custom",
    "this.params..extra",
    "(1 + 2",
    "a ? b",
    "this.params.config.extra.x = 1",
    "function() { return 1 }",
    "this.constructor.constructor('alert(1)')()",
    "",
])
def test_malformed_expressions_are_problems(bad):
    problem = check_expression(bad, pointer="/extra/x/if_func")
    assert problem is not None and problem.pointer == "/extra/x/if_func"
    assert "cannot parse" in problem.message
    with pytest.raises(ExpressionError):
        evaluate(bad, ctx())


def test_never_calls_python():
    with pytest.raises(ExpressionError):
        evaluate("__import__('os').system('true')", ctx())
    with pytest.raises(ExpressionError):
        evaluate("this.params.config.extra.x.upper()", ctx({"x": "a"}))


def test_check_ui_expressions_points_at_the_attribute():
    ui = {"extra": {"a": {"type": "slider", "if_func": "this.params.config.extra.b ==="},
                    "b": {"type": "switch"},
                    "c.d": {"type": "select", "items_func": "this.tableHeader['datTable']"}}}
    problems = check_ui_expressions(ui, file="ui.json")
    assert [p.pointer for p in problems] == ["/extra/a/if_func"]
    assert problems[0].file == "ui.json"


def test_every_sample_expression_parses():
    count = 0
    for ui_file in sorted(SAMPLES.glob("*/ui.json")):
        ui = json.loads(ui_file.read_text("utf-8"))
        assert check_ui_expressions(ui) == [], ui_file
        count += sum(1 for s in ("data", "extra") for w in (ui.get(s) or {}).values()
                     if any(k in w for k in ("if", "if_func", "items_func")))
    assert count >= 20


def test_visibility_and_active_fields():
    ui = json.loads((SAMPLES / "basic-heatmap" / "ui.json").read_text("utf-8"))
    base = {"extra": {"color": "default", "display_numbers": False}}
    shown = active_fields(ui, base)["extra"]
    assert "color_low" not in shown and "number_color" not in shown and "color" in shown
    shown = active_fields(ui, {"extra": {"color": "custom", "display_numbers": True}})["extra"]
    assert {"color_low", "color_mid", "color_high", "number_color"} <= shown
    assert visible({"if_func": "this.broken ==="}, ctx()) is True


def test_prune_hidden_keeps_defaults_for_hidden_fields():
    ui = {"extra": {"chart_type": {"type": "select"},
                    "marker_size": {"type": "slider", "if_func": "this.params.config.extra.chart_type === 'scatter'"}}}
    request = {"extra": {"chart_type": "bar", "marker_size": 99, "hidden_param": 1}}
    params = {"extra": {"chart_type": "bar", "marker_size": 99}}
    assert prune_hidden(ui, request, params)["extra"] == {"chart_type": "bar", "hidden_param": 1}
    params["extra"]["chart_type"] = request["extra"]["chart_type"] = "scatter"
    assert prune_hidden(ui, request, params)["extra"]["marker_size"] == 99
