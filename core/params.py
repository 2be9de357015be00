"""Parameter schemas: derived from data.json (defaults) and ui.json (widgets).

A run request has the sections of Hiplot's ``params.config`` plus ``textarea``::

    {"textarea": {...}, "data": {...}, "dataArg": {...}, "general": {...}, "extra": {...}}

(A Hiplot-shaped ``{"params": {"textarea": ..., "config": {...}}}`` or ``{"config": ...}``
is accepted too, one level deep: ``core.requests.canonical_request``.) ``ParamSpec.validate`` fills the defaults and checks the request against
the derived JSON Schema; every front end calls it, none re-implements it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from . import schema_check as schemas
from .errors import ParamsError, Problem, did_you_mean
from .models.ui import CHOICE_TYPES, Widget
from .requests import canonical_request

if TYPE_CHECKING:
    from .plugin import Plugin

SECTIONS = ("data", "dataArg", "general", "extra")
COLOUR = r"^(|#[0-9A-Fa-f]{3}|#[0-9A-Fa-f]{6}|#[0-9A-Fa-f]{8}|[A-Za-z]+|rgba?\(.*\))$"
NUMBER = {"type": "number"}
SCALAR = {"type": ["string", "number"]}


def widget_schema(widget: Widget, default: Any) -> dict[str, Any]:
    """The JSON Schema of one ``extra`` value, from its widget type and properties."""
    kind = widget.type
    if kind == "slider":
        schema: dict[str, Any] = (
            {"type": "integer"} if integer_slider(widget) and _whole(default) else dict(NUMBER))
        if widget.min is not None:
            schema["minimum"] = widget.min
        if widget.max is not None and not widget.prop("max_func"):
            schema["maximum"] = widget.max
    elif kind == "range-slider":
        item = {"type": "number"}
        if widget.min is not None:
            item["minimum"] = widget.min
        if widget.max is not None:
            item["maximum"] = widget.max
        schema = {"type": "array", "items": item, "minItems": 2, "maxItems": 2}
    elif kind == "switch":
        schema = {"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}]}
    elif kind in ("select", "autocomplete") and widget.items and not widget.prop("items_func"):
        choices = _choices(widget.items)
        schema = {"enum": choices + ([""] if default == "" and "" not in choices else [])}
    elif kind == "color-picker":
        schema = {"type": "string", "pattern": COLOUR}
    elif kind in CHOICE_TYPES or kind == "text-field":
        schema = dict(SCALAR)
    else:
        schema = {}
    if widget.multiple and kind in CHOICE_TYPES:
        schema = {"type": "array", "items": schema}
    if default is not None:
        schema["default"] = default
    return schema


def integer_slider(widget: Widget) -> bool:
    """A slider whose min, max and step are all integers (step defaults to 1) takes integers."""
    bounds = [widget.min, widget.max, 1 if widget.step is None else widget.step]
    return all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)


def _whole(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and float(value).is_integer())


def _choices(items: list[Any]) -> list[Any]:
    """Select items may be plain values or ``{"text", "value"}`` objects (Vuetify)."""
    return [i.get("value", i.get("text")) if isinstance(i, dict) else i for i in items]


def _input_schema(widget: Widget) -> dict[str, Any]:
    if widget.type in ("codemirror", "combobox"):
        return {"type": ["string", "number", "array"]}
    link = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    return {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"value": link, "link": link}}]}


@dataclass
class ParamSpec:
    """The parameter contract of one plugin."""

    plugin_id: str
    defaults: dict[str, Any]
    textarea: dict[str, str]
    examples: list[dict[str, Any]]
    inputs: dict[str, Widget]
    json_schema: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def from_plugin(cls, plugin: Plugin) -> ParamSpec:
        config = copy.deepcopy(plugin.data.config)
        defaults = {s: config.get(s) or {} for s in SECTIONS}
        data_file, ui_file = str(plugin.folder / "data.json"), str(plugin.folder / "ui.json")
        problems: list[Problem] = []
        extra_props: dict[str, Any] = {}
        for key, widget in plugin.ui.extra.items():
            default = defaults["extra"].get(key)
            extra_props[key] = widget_schema(widget, default)
            problems += _check_default(widget, key, default, ui_file)
        for key, value in defaults["extra"].items():
            if key not in extra_props:  # hidden parameter (no widget): keep its type
                extra_props[key] = _hidden_schema(value)
        inputs = dict(plugin.ui.data)
        data_props = {k: _input_schema(w) for k, w in inputs.items()}
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"request for plugin {plugin.id}",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "textarea": {"type": "object", "additionalProperties": {"type": "string"}},
                "data": {"type": "object", "properties": data_props, "additionalProperties": False},
                "dataArg": {"type": "object", "additionalProperties": {
                    "type": "array", "items": {"type": "object"}}},
                "general": {"type": "object"},
                "extra": {"type": "object", "properties": extra_props, "additionalProperties": False},
            },
        }
        spec = cls(plugin.id, defaults, dict(plugin.data.textarea), plugin.data.examples(),
                   inputs, schema, problems)
        spec.problems += spec._example_problems(data_file, isinstance(plugin.data.exampleData, list))
        return spec

    def _example_problems(self, data_file: str, is_list: bool) -> list[Problem]:
        """The first exampleData entry (the one Hiplot's hicli runs) must validate."""
        if not self.examples:
            return []
        try:
            self.validate(self.example_request(0), check_inputs=False)
            return []
        except ParamsError as exc:
            where = "/exampleData/0" if is_list else "/exampleData"
            return [Problem(f"exampleData does not validate: {p.message}", file=data_file,
                            pointer=f"{where}/config{p.pointer}", given=p.given, allowed=p.allowed)
                    for p in exc.problems]

    @cached_property
    def validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.json_schema)

    def normalize(self, request: dict[str, Any]) -> dict[str, Any]:
        """The canonical ``{textarea, data, dataArg, general, extra}`` (``core.requests``)."""
        return canonical_request(request, self.plugin_id)

    def validate(self, request: dict[str, Any], *, check_inputs: bool = True,
                 live_inputs: tuple[str, ...] = ()) -> dict[str, Any]:
        """Fill defaults, then check; raise ParamsError listing every problem.

        ``live_inputs`` are inputs fed by a live source (``hisci.live``), so not required as files."""
        request = self.normalize(request)
        problems = non_finite_problems(request) or [
            schemas_problem(err)
            for err in sorted(self.validator.iter_errors(request), key=lambda e: list(e.absolute_path))
        ]
        if problems:
            raise ParamsError(problems, plugin_id=self.plugin_id,
                              summary=f"invalid request for plugin '{self.plugin_id}'")
        params = self.fill_defaults(request)
        if check_inputs:
            problems = [p for p in self.missing_inputs(params)
                        if p.pointer not in {f"/data/{name}" for name in live_inputs}]
            if problems:
                raise ParamsError(problems, plugin_id=self.plugin_id,
                                  summary=f"missing inputs for plugin '{self.plugin_id}'")
        return params

    def fill_defaults(self, request: dict[str, Any]) -> dict[str, Any]:
        params = copy.deepcopy(self.defaults)
        params["textarea"] = dict(self.textarea)
        for section, values in request.items():
            if section == "dataArg" and isinstance(values, dict):
                params["dataArg"] = {**(params["dataArg"] or {}), **values}
            elif isinstance(values, dict):
                params.setdefault(section, {}).update(copy.deepcopy(values))
        for key, widget in self.json_schema["properties"]["extra"]["properties"].items():
            value = params["extra"].get(key)
            if widget.get("anyOf") and value in (0, 1) and not isinstance(value, bool):
                params["extra"][key] = bool(value)
            elif widget.get("type") == "integer" and isinstance(value, float) and value.is_integer():
                params["extra"][key] = int(value)
        return params

    def missing_inputs(self, params: dict[str, Any]) -> list[Problem]:
        problems = []
        for key, widget in self.inputs.items():
            if widget.required and not input_given(params, key):
                problems.append(Problem(
                    f"required input '{key}' was not given", pointer=f"/data/{key}",
                    allowed=widget.exts or None,
                    hint=f"give a file for input '{key}'" + (
                        f" or paste the table into textarea.{key}" if widget.type == "hiplot-textarea" else "")))
        return problems

    def example_request(self, index: int = 0) -> dict[str, Any]:
        """exampleData[index] merged over the defaults one level deep, as Hiplot's hicli does."""
        if not self.examples:
            return {}
        if index >= len(self.examples):
            raise ParamsError([Problem(
                f"example {index} does not exist", pointer="/exampleData",
                given=index, allowed=list(range(len(self.examples))))], plugin_id=self.plugin_id)
        example = self.examples[index]
        request: dict[str, Any] = {s: dict(v) for s, v in (example.get("config") or {}).items()
                                   if isinstance(v, dict)}
        if example.get("textarea"):
            request["textarea"] = dict(example["textarea"])
        return request


def non_finite_problems(value: Any, pointer: str = "") -> list[Problem]:
    """The one rule for numbers: NaN, Infinity and overflowing literals (1e999) are refused
    anywhere in a request (JSON Schema's ``number`` would let them through)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [Problem(f"{value} is not a finite number", pointer=pointer or "/", given=str(value),
                        hint="give a finite number (NaN, Infinity and 1e999 are not accepted)")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite_problems(v, f"{pointer}/{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in non_finite_problems(v, f"{pointer}/{i}")]
    return []


def input_given(params: dict[str, Any], key: str) -> bool:
    """True when input ``key`` has a link, a value or a pasted table."""
    if (params.get("textarea") or {}).get(key):
        return True
    entry = (params.get("data") or {}).get(key)
    if isinstance(entry, dict):
        return any(entry.get(k) not in (None, "", [], [""]) for k in ("link", "value"))
    return entry not in (None, "", [])


def schemas_problem(err: Any) -> Problem:
    """A request error, with a "did you mean" for unknown parameter names."""
    problem = schemas._problem(schemas._leaf(err), "")
    if err.validator == "additionalProperties":
        known = sorted(err.schema.get("properties", {}))
        unknown = sorted(set(err.instance) - set(known))
        problem = Problem(
            "unknown parameter(s) " + "; ".join(f"'{k}'{did_you_mean(k, known)}" for k in unknown)
            + f". Known: {', '.join(known)}",
            pointer=problem.pointer, given=unknown, allowed=known)
    elif err.validator in ("minimum", "maximum"):
        problem.message = f"{err.instance!r} is out of range ({err.validator} {err.validator_value})"
    return problem


def _hidden_schema(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean", "default": value}
    if isinstance(value, (int, float)):
        return {"type": "number", "default": value}
    return {"default": value} if value is not None else {}


def _check_default(widget: Widget, key: str, default: Any, file: str) -> list[Problem]:
    ptr = f"/extra/{key}"
    if widget.type == "slider" and isinstance(default, (int, float)) and not isinstance(default, bool):
        lo, hi = widget.min, widget.max
        if (lo is not None and default < lo) or (hi is not None and default > hi and not widget.prop("max_func")):
            return [Problem(f"slider default {default} is outside [{lo}, {hi}]", file=file,
                            pointer=ptr, given=default, allowed=[lo, hi],
                            hint="change min/max here or the default in data.json")]
    if widget.type == "slider" and default is not None and not isinstance(default, (int, float)):
        return [Problem(f"slider default must be a number, got {default!r}", file=file, pointer=ptr,
                        given=default)]
    if widget.type in ("select", "autocomplete") and widget.items and not widget.prop("items_func"):
        allowed = _choices(widget.items)
        values = default if isinstance(default, list) else [default]
        bad = [v for v in values if v not in allowed and v not in ("", None)]
        if bad:
            return [Problem(f"default {bad[0]!r} is not among the items{did_you_mean(str(bad[0]), map(str, allowed))}",
                            file=file, pointer=ptr, given=bad[0], allowed=allowed,
                            hint="add it to items or change the default in data.json")]
    return []
