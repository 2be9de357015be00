"""Hiplot's leniency: quirks Hiplot's own form accepts become warnings, not rejections.

Real Hiplot plugins carry a few things a strict reading refuses although Hiplot draws
their forms and runs them:

- ``{}`` stub widgets in ui.json (e.g. basic/barplot-ggpubr ``add``, ``error.plot``): the
  field is not drawn; its data.json value (if any) is passed on as a hidden parameter.
- a widget with no default in data.json (basic/d3-wordcloud ``padding``): the form starts
  from the empty value of the widget's type.
- exampleData naming a parameter no widget or default declares (advance/ideogram-heat
  ``ylab``): the form ignores it.

:func:`tolerate` rewrites the three JSON documents accordingly (copies; the files are not
touched) and returns one :class:`~.errors.Problem` per quirk for ``Plugin.warnings``.
Anything that would break a form or a run stays an error.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import Problem


def empty_value(widget: dict[str, Any]) -> Any:
    """The value a Hiplot form starts from when data.json gives none.

    ``False`` for a switch, ``[]`` for a multiple choice, the lower bound (or 0) for a
    slider, ``[min, max]`` for a range slider, ``""`` for everything else.
    """
    kind = widget.get("type")
    if kind == "switch":
        return False
    if widget.get("multiple"):
        return []
    if kind == "slider":
        return widget.get("min", 0)
    if kind == "range-slider":
        return [widget.get("min", 0), widget.get("max", widget.get("min", 0))]
    return ""


def tolerate(raw: dict[str, dict[str, Any]], folder: str) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Apply Hiplot's leniency to ``{"meta.json": ..., "data.json": ..., "ui.json": ...}``.

    Returns
    -------
    The documents to validate (changed copies where a quirk was found) and the warnings.
    Documents of the wrong shape are returned as they are, for the schema checks to report.
    """
    ui, data = raw.get("ui.json"), raw.get("data.json")
    if not isinstance(ui, dict) or not isinstance(data, dict):
        return raw, []
    ui_extra = ui.get("extra")
    config = (data.get("params") or {}).get("config") if isinstance(data.get("params"), dict) else None
    if not isinstance(ui_extra, dict) or not isinstance(config, dict):
        return raw, []
    ui, data = copy.copy(ui), copy.deepcopy(data)
    ui["extra"] = dict(ui_extra)
    config = data["params"]["config"]
    defaults = config.setdefault("extra", {}) if isinstance(config.get("extra", {}), dict) else None
    if defaults is None:
        return raw, []
    ui_file, data_file = f"{folder}/ui.json", f"{folder}/data.json"
    warnings: list[Problem] = []
    for key, widget in list(ui_extra.items()):
        if widget == {}:
            del ui["extra"][key]
            kept = f"keeps its data.json value {defaults[key]!r}" if key in defaults else "has no value"
            warnings.append(Problem(
                f"widget '{key}' is an empty stub {{}}: the field is hidden and {kept}",
                file=ui_file, pointer=f"/extra/{key}",
                hint=f"give '{key}' a type (and a label), or delete it"))
        elif isinstance(widget, dict) and isinstance(widget.get("type"), str) and key not in defaults:
            defaults[key] = empty_value(widget)
            warnings.append(Problem(
                f"widget '{key}' has no default in data.json; the form starts from {defaults[key]!r}",
                file=data_file, pointer=f"/params/config/extra/{key}",
                hint=f"add \"{key}\": <default> to params.config.extra"))
    warnings += _unknown_example_keys(data, set(ui["extra"]) | set(defaults), data_file)
    return {**raw, "ui.json": ui, "data.json": data}, warnings


def _unknown_example_keys(data: dict[str, Any], known: set[str], data_file: str) -> list[Problem]:
    examples = data.get("exampleData")
    entries = examples if isinstance(examples, list) else [examples]
    warnings = []
    for index, example in enumerate(entries):
        extra = ((example or {}).get("config") or {}).get("extra") if isinstance(example, dict) else None
        if not isinstance(extra, dict):
            continue
        where = f"/exampleData/{index}" if isinstance(examples, list) else "/exampleData"
        for key in [k for k in extra if k not in known]:
            del extra[key]
            warnings.append(Problem(
                f"exampleData sets '{key}', which no widget or default declares; it is ignored",
                file=data_file, pointer=f"{where}/config/extra/{key}",
                hint=f"declare '{key}' in ui.json and data.json, or remove it from exampleData"))
    return warnings
