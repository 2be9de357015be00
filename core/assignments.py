"""Turn ``section.key=value`` strings (``hicli run --set``) into a request, typed by the schema."""

from __future__ import annotations

import json
from typing import Any

from .errors import ParamsError, Problem

SECTIONS = ("data", "dataArg", "general", "extra", "textarea")
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def parse_assignments(assignments: list[str], schema: dict[str, Any]) -> dict[str, Any]:
    """``["extra.alpha=0.5", "extra.items=a,b"]`` -> ``{"extra": {"alpha": 0.5, "items": ["a", "b"]}}``.

    A bare ``key=value`` means ``extra.key``. Values are parsed by the parameter's schema
    type: numbers, booleans, JSON, or comma-separated lists for arrays.
    """
    request: dict[str, Any] = {}
    problems = []
    for text in assignments:
        if "=" not in text:
            problems.append(Problem(f"assignment {text!r} has no '='", given=text,
                                    hint="write section.key=value, e.g. extra.name=value"))
            continue
        path, raw = text.split("=", 1)
        section, _, key = path.partition(".")
        if not key:
            section, key = "extra", section
        if section not in SECTIONS:
            problems.append(Problem(f"assignment {text!r}: unknown section {section!r}", given=section,
                                    allowed=list(SECTIONS), pointer=f"/{section}"))
            continue
        props = schema["properties"].get(section, {}).get("properties", {})
        if section == "dataArg":
            value: Any = [{"value": v} for v in _split(raw)]
        else:
            value = coerce(raw, props.get(key, {}))
        request.setdefault(section, {})[key] = value
    if problems:
        raise ParamsError(problems, summary="invalid parameter assignment")
    return request


def coerce(raw: str, schema: dict[str, Any]) -> Any:
    """Parse a command-line string by a JSON Schema fragment (best effort; validation follows)."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if "anyOf" in schema and any(s.get("type") == "boolean" for s in schema["anyOf"]):
        kinds = ["boolean"]
    if "enum" in schema:
        for option in schema["enum"]:
            if str(option) == raw:
                return option
        return raw
    if kinds == ["array"] or kind == "array":
        if raw.strip().startswith("["):
            return _json(raw)
        return [coerce(v, schema.get("items", {})) for v in _split(raw)]
    if "boolean" in kinds:
        if raw.lower() in TRUE:
            return True
        if raw.lower() in FALSE:
            return False
        return raw
    if "number" in kinds or "integer" in kinds:
        number = _number(raw)
        if number is not None:
            return number
    if not kinds:
        parsed = _json(raw)
        return parsed
    return raw


def _split(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def _number(raw: str) -> int | float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return int(value) if value.is_integer() and "." not in raw and "e" not in raw.lower() else value


def _json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


FILE_INPUTS = ("cloud-file", "hiplot-textarea")


def _accepts(widget: Any, filename: str) -> bool:
    name = filename.lower()
    return any(name.endswith("." + str(ext).lower().lstrip(".")) for ext in widget.exts or [])


def assign_files(plugin: Any, files: list[str]) -> dict[str, list[str]]:
    """Bind input files given without a name to the plugin's inputs.

    Each file goes to the one file input whose extensions match it; failing that, to the
    plugin's single required input.

    Raises
    ------
    InputError
        At ``/data`` when a file fits no input or several, or a single-file input gets
        several files; ``allowed`` lists the input names.
    """
    from .errors import InputError

    inputs = {k: w for k, w in plugin.ui.data.items() if w.type in FILE_INPUTS}
    required = [k for k, w in inputs.items() if w.required]
    out: dict[str, list[str]] = {}
    for path in files:
        matches = [k for k, w in inputs.items() if _accepts(w, str(path))]
        if len(matches) == 1:
            target = matches[0]
        elif len(required) == 1 and (not matches or required[0] in matches):
            target = required[0]
        else:
            why = (f"it fits {len(matches)} inputs ({', '.join(matches)})" if matches
                   else "no input takes its extension and the plugin has no single required input")
            raise InputError(f"cannot tell which input {path!r} is for: {why}", pointer="/data", given=str(path),
                             allowed=matches or list(inputs), hint="name the input the file is for")
        out.setdefault(target, []).append(str(path))
    for key, paths in out.items():
        if len(paths) > 1 and not inputs[key].multiple:
            raise InputError(f"input '{key}' takes one file, got {len(paths)}: {', '.join(paths)}",
                             pointer=f"/data/{key}", given=paths, allowed=[key],
                             hint="give one file for it, or name the input each file is for")
    return out
