"""Parameter sweeps: one request, one parameter taking several values, one child per value.

``extra.center=1020:1030:0.5`` is a range (start:stop:step, stop included, computed in
decimal so 0.1 steps do not drift); ``extra.filter=shepp,hann`` or a JSON list is a list.
Every value is checked against the parameter's schema before anything is submitted, and a
sweep may have at most ``limit`` values (the per-user limit, default 200).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from jsonschema import Draft202012Validator

from .assignments import SECTIONS, coerce
from .errors import ParamsError, Problem
from .plugin import Plugin

DEFAULT_SWEEP_LIMIT = 200


@dataclass(frozen=True)
class Sweep:
    """One swept parameter.

    Attributes
    ----------
    key : ``section.name``, e.g. ``extra.center``.
    values : the values, in order; child ``i`` gets ``values[i]``.
    """

    key: str
    values: tuple[Any, ...]

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    def requests(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """The children's requests: ``request`` with the parameter set to each value."""
        children = []
        for value in self.values:
            child = copy.deepcopy(request)
            child.setdefault(self.section, {})[self.name] = value
            children.append(child)
        return children

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "values": list(self.values)}


def parse_sweep(text: str, plugin: Plugin, limit: int = DEFAULT_SWEEP_LIMIT) -> Sweep:
    """``"extra.center=1020:1030:0.5"`` or ``"extra.alpha=0.2,0.5,0.8"`` -> Sweep (validated).

    A bare ``name=...`` means ``extra.name``. Raises ParamsError naming the field, the value
    and what is allowed.
    """
    key, sep, raw = text.partition("=")
    if not sep or not raw.strip():
        raise ParamsError([Problem(f"sweep {text!r} is not KEY=VALUES", given=text, pointer="/sweep",
                                   hint="write extra.center=1020:1030:0.5 (start:stop:step) or "
                                        "extra.alpha=0.2,0.5,0.8 (a list)")], summary="invalid sweep")
    return sweep_from(key.strip(), raw.strip(), plugin, limit)


def sweep_from(key: str, values: str | list[Any], plugin: Plugin,
               limit: int = DEFAULT_SWEEP_LIMIT) -> Sweep:
    """A Sweep from a key and either a list (the API's ``{"extra.center": [..]}``) or the
    command-line text (range or comma list). Every value is validated by the schema."""
    if "." not in key:
        key = f"extra.{key}"
    section, name = key.split(".", 1)
    pointer = f"/{section}/{name}"
    props = plugin.parameter_schema()["properties"].get(section, {}).get("properties", {})
    if section not in SECTIONS or section in ("data", "dataArg", "textarea") or name not in props:
        known = [f"{s}.{n}" for s in ("extra", "general")
                 for n in plugin.parameter_schema()["properties"].get(s, {}).get("properties", {})]
        raise ParamsError([Problem(f"sweep: {key!r} is not a parameter of {plugin.id}", pointer=pointer,
                                   given=key, allowed=known[:40] or None,
                                   hint="sweep a numeric or select parameter under extra or general")],
                          plugin_id=plugin.id, summary="invalid sweep")
    schema = props[name]
    if schema.get("type") == "array" or "items" in schema:
        raise ParamsError([Problem(f"sweep: {key} takes a list itself, so it cannot be swept",
                                   pointer=pointer, hint="sweep a single-valued parameter")],
                          plugin_id=plugin.id, summary="invalid sweep")
    if isinstance(values, str):
        parsed = _parse_values(values, schema, pointer)
    elif isinstance(values, (list, tuple)):
        parsed = list(values)
    else:
        raise ParamsError([Problem(f"sweep: {key} needs a list of values", pointer=pointer,
                                   given=values)], plugin_id=plugin.id, summary="invalid sweep")
    if not parsed:
        raise ParamsError([Problem(f"sweep: {key} has no values", pointer=pointer)],
                          plugin_id=plugin.id, summary="invalid sweep")
    if len(parsed) > limit:
        raise ParamsError([Problem(f"sweep: {key} has {len(parsed)} values; the limit is {limit} "
                                   "jobs per sweep for this user", pointer=pointer, given=len(parsed),
                                   hint="use a coarser step, or ask an admin to raise the limit")],
                          plugin_id=plugin.id, summary="sweep too large")
    validator = Draft202012Validator(schema)
    problems = []
    for value in parsed:
        for err in validator.iter_errors(value):
            allowed = schema.get("enum") or {k: schema[k] for k in ("minimum", "maximum") if k in schema}
            problems.append(Problem(f"sweep: {key} value {value!r}: {err.message}", pointer=pointer,
                                    given=value, allowed=allowed or None))
            break
    if problems:
        raise ParamsError(problems, plugin_id=plugin.id, summary="invalid sweep values")
    return Sweep(key, tuple(parsed))


def expand_range(text: str) -> list[int | float]:
    """``"1020:1030:0.5"`` -> [1020, 1020.5, ..., 1030] (stop included when on the grid).

    Computed with decimals: ``0:0.3:0.1`` gives exactly 0, 0.1, 0.2, 0.3. Integers stay
    integers when start, stop and step all are. Raises ValueError.
    """
    parts = [p.strip() for p in text.split(":")]
    if len(parts) != 3:
        raise ValueError(f"{text!r} is not start:stop:step")
    try:
        start, stop, step = (Decimal(p) for p in parts)
    except InvalidOperation:
        raise ValueError(f"{text!r}: start, stop and step must be numbers") from None
    if not (start.is_finite() and stop.is_finite() and step.is_finite()):
        raise ValueError(f"{text!r}: start, stop and step must be finite numbers")
    if step <= 0:
        raise ValueError(f"{text!r}: step must be > 0")
    if stop < start:
        raise ValueError(f"{text!r}: stop is below start")
    count = int((stop - start) / step) + 1
    if count > 100_000:
        raise ValueError(f"{text!r} makes {count} values")
    integral = all(d == d.to_integral_value() for d in (start, stop, step)) and "." not in text
    values = [start + i * step for i in range(count)]
    return [int(v) if integral else float(v) for v in values]


def _parse_values(raw: str, schema: dict[str, Any], pointer: str) -> list[Any]:
    numeric = "enum" not in schema and (
        schema.get("type") in ("number", "integer")
        or (isinstance(schema.get("type"), list) and "number" in schema["type"]))
    if raw.count(":") == 2 and numeric:
        try:
            return list(expand_range(raw))
        except ValueError as exc:
            raise ParamsError([Problem(f"sweep: {exc}", pointer=pointer, given=raw,
                                       hint="a range is start:stop:step with stop included")],
                              summary="invalid sweep") from None
    if raw.startswith("["):
        import json

        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, list):
            return value
    return [coerce(v.strip(), schema) for v in raw.split(",") if v.strip()]
