"""The shipped JSON Schemas are valid, match the models, and accept real Hiplot plugins."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from hisci.models.ui import WIDGET_TYPES
from hisci.plugin import load_plugin
from hisci.schema_check import SCHEMA_NAMES, load_schema

from .conftest import SAMPLE_IDS, SAMPLES


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_files_are_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["$id"].endswith("/1.0.json")


def test_widget_enum_matches_the_model_list() -> None:
    enum = load_schema("ui")["$defs"]["widget"]["properties"]["type"]["enum"]
    assert tuple(enum) == WIDGET_TYPES


@pytest.mark.parametrize("sample", SAMPLE_IDS)
def test_hiplot_sample_loads_and_its_example_validates(sample: str) -> None:
    plugin = load_plugin(SAMPLES / sample)
    schema = plugin.parameter_schema()
    extra = schema["properties"]["extra"]["properties"]
    assert set(extra) == set(plugin.data.config.get("extra", {}))
    params = plugin.validate_request(plugin.example_request())
    # the example's overrides are applied over the defaults, one level deep
    example = plugin.data.examples()[0]
    for section, values in (example.get("config") or {}).items():
        for key, value in values.items():
            assert params[section][key] == value
    assert not plugin.runnable  # Hiplot plugins have no runtime block: listed, not run


def test_derived_schema_maps_widgets_to_types() -> None:
    heatmap = load_plugin(SAMPLES / "basic-heatmap").parameter_schema()["properties"]["extra"]["properties"]
    assert heatmap["scale"]["enum"] == ["none", "row", "column"]
    assert heatmap["cluster_rows"]["default"] is True
    volcano = load_plugin(SAMPLES / "basic-volcano").parameter_schema()["properties"]["extra"]["properties"]
    sliders = {k: v for k, v in volcano.items() if v.get("type") == "number" and "maximum" in v}
    assert sliders, "volcano has sliders with bounds"
    ma = load_plugin(SAMPLES / "basic-pseudo-enhanced-ma").parameter_schema()["properties"]["extra"]["properties"]
    ranges = [v for v in ma.values() if v.get("type") == "array" and v.get("minItems") == 2]
    assert ranges, "range-slider becomes a [lo, hi] array"
