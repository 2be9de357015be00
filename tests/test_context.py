"""The plugin API: RunContext.field, progress_span, save_array, save_json; integer sliders."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

from hisci import InputError, Registry, RunContext
from hisci.models.ui import Widget
from hisci.params import integer_slider

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def _ctx(tmp_path, extra=None, sink=None):
    return RunContext({"extra": extra or {}}, {}, tmp_path / "out", tmp_path,
                      logging.getLogger("test"), progress_sink=sink)


def test_field_turns_a_value_error_into_an_input_error_at_the_parameter(tmp_path):
    ctx = _ctx(tmp_path, {"rows": "7:3"})
    with pytest.raises(InputError) as info, ctx.field("rows") as value:
        assert value == "7:3"
        raise ValueError("rows '7:3' are empty")
    err = info.value
    assert (err.pointer, err.given, err.message) == ("/extra/rows", "7:3", "rows '7:3' are empty")


def test_field_with_a_pointer_names_the_file_and_lets_other_errors_through(tmp_path):
    ctx = _ctx(tmp_path)
    with pytest.raises(InputError) as info, ctx.field("/data/scan", file=tmp_path / "a" / "scan.h5",
                                                      hint="give an NXtomo file"):
        raise ValueError("no /entry")
    assert (info.value.pointer, info.value.file, info.value.hint) == ("/data/scan", "scan.h5",
                                                                      "give an NXtomo file")
    with pytest.raises(KeyError), ctx.field("rows"):
        raise KeyError("not a ValueError")


def test_progress_span_maps_and_nests(tmp_path):
    seen = []
    ctx = _ctx(tmp_path, sink=lambda f, m: seen.append(round(f, 6)))
    with ctx.progress_span(0.2, 0.6) as step:
        ctx.progress(0.5)
        step(1, 4, "one of four")
        with ctx.progress_span(0.5, 1.0):
            ctx.progress(0.0)
            ctx.progress(1.0)
    ctx.progress(0.9)
    assert seen == [0.4, 0.3, 0.4, 0.6, 0.9]


def test_save_array_writes_attributes_next_to_the_data(tmp_path):
    ctx = _ctx(tmp_path)
    data = np.arange(6.0).reshape(2, 3)
    path = ctx.save_array("stack", data, {"units": "counts", "axes": ["frame", "q"], "meta": {"a": 1}})
    assert path.name == "stack.h5"
    with h5py.File(path) as fh:
        np.testing.assert_array_equal(fh["data"][()], data)
        assert fh["data"].attrs["units"] == "counts"
        assert list(fh["data"].attrs["axes"]) == ["frame", "q"]
        assert json.loads(fh["data"].attrs["meta"]) == {"a": 1}
    npy = ctx.save_array("stack.npy", data, {"units": "counts"})
    np.testing.assert_array_equal(np.load(npy), data)
    assert json.loads((npy.parent / "stack.npy.attrs.json").read_text()) == {"units": "counts"}
    with pytest.raises(ValueError, match="unknown suffix"):
        ctx.save_array("stack.txt", data)


def test_save_json_accepts_numpy_values(tmp_path):
    path = _ctx(tmp_path).save_json("summary", {"n": np.int64(3), "x": np.array([1.5, 2.0])})
    assert path.name == "summary.json"
    assert json.loads(path.read_text()) == {"n": 3, "x": [1.5, 2.0]}


@pytest.mark.parametrize(("props", "integer"), [
    ({"min": 1, "max": 10, "step": 1}, True),
    ({"min": 0, "max": 500}, True),
    ({"min": 10, "max": 10000, "step": 10}, True),
    ({"min": 0, "max": 1, "step": 0.1}, False),
    ({"min": 1.0, "max": 10}, False),
])
def test_integer_sliders(props, integer):
    assert integer_slider(Widget.model_validate({"type": "slider", "label": "x", **props})) is integer


def test_an_integer_slider_gives_an_int_and_refuses_a_fraction():
    plugin = Registry.discover().get("nhit_trigger")
    schema = plugin.parameter_schema()["properties"]["extra"]["properties"]
    assert schema["threshold"]["type"] == "integer" and schema["window_ns"]["type"] == "integer"
    params = plugin.validate_request({"extra": {"threshold": 12.0}, "data": {"hits": "x.hits"}})
    assert params["extra"]["threshold"] == 12 and isinstance(params["extra"]["threshold"], int)
    with pytest.raises(Exception, match="threshold"):
        plugin.validate_request({"extra": {"threshold": 12.5}, "data": {"hits": "x.hits"}})


@pytest.mark.parametrize("path", sorted(PLUGINS.glob("*/plugin.py")), ids=lambda p: p.parent.name)
def test_builtins_use_the_plugin_api(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    imports = {alias.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == "hisci"
               for alias in node.names}
    assert "RunContext" in imports, f"{path}: import RunContext from hisci"
    run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
    assert ast.unparse(run.args.args[0].annotation) == "RunContext"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            target = ast.unparse(node.func.value)
            assert target != "extra" and "params" not in target, f"{path}: {ast.unparse(node)} restates a default"
    assert "_input_error" not in source and "as_int" not in source
