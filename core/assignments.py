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
            problems.append(Problem(f"--set {text!r} has no '='", given=text,
                                    hint="write --set extra.name=value"))
            continue
        path, raw = text.split("=", 1)
        section, _, key = path.partition(".")
        if not key:
            section, key = "extra", section
        if section not in SECTIONS:
            problems.append(Problem(f"--set {text!r}: unknown section {section!r}", given=section,
                                    allowed=list(SECTIONS), pointer=f"/{section}"))
            continue
        props = schema["properties"].get(section, {}).get("properties", {})
        if section == "dataArg":
            value: Any = [{"value": v} for v in _split(raw)]
        else:
            value = coerce(raw, props.get(key, {}))
        request.setdefault(section, {})[key] = value
    if problems:
        raise ParamsError(problems, summary="invalid --set")
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
