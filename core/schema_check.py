"""Load the JSON Schemas shipped in ``hisci.schemas`` and turn their errors into Problems."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from .errors import Problem, did_you_mean

SCHEMA_NAMES = ("meta", "data", "ui")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``<name>.schema.json`` (meta, data or ui) as a dict."""
    text = resources.files("hisci.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def pointer(path: Iterable[Any]) -> str:
    """RFC 6901 JSON pointer of a path of keys and indices."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def read_json(path: Path) -> tuple[Any, list[Problem]]:
    """Parse a JSON file; a syntax error becomes a Problem with line and column."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None, [Problem("file is missing", file=str(path), hint=f"create {path.name}")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(f"cannot read file: {exc}", file=str(path))]
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        return None, [
            Problem(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                file=str(path),
                hint="fix the syntax (a trailing comma or a missing quote is the usual cause)",
            )
        ]


def check(document: Any, schema_name: str, file: str = "") -> list[Problem]:
    """Validate ``document`` against a shipped schema; every error becomes a Problem."""
    errors = sorted(validator(schema_name).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [_problem(err, file) for err in _leaves(errors)]


def _leaves(errors: list[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    return [_leaf(err) for err in errors]


def _leaf(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For a oneOf/anyOf failure, report the deepest sub-error when one exists."""
    if err.validator in ("oneOf", "anyOf") and err.context:
        deep = [e for e in err.context if len(e.absolute_path) > len(err.absolute_path)]
        if deep:
            return _leaf(jsonschema.exceptions.best_match(deep))
    return err


def _alternatives(err: jsonschema.ValidationError) -> list[str]:
    kinds = []
    for sub in err.validator_value:
        kind = sub.get("type") or sub.get("$ref", "").rsplit("/", 1)[-1] or "schema"
        kinds.append(kind if isinstance(kind, str) else " or ".join(kind))
    return kinds


def _problem(err: jsonschema.ValidationError, file: str) -> Problem:
    ptr = pointer(err.absolute_path)
    given = err.instance if not isinstance(err.instance, (dict, list)) else None
    if err.validator == "enum":
        allowed = list(err.validator_value)
        known = ", ".join(map(str, allowed))
        what = "widget type" if ptr.endswith("/type") else "value"
        return Problem(
            f"unknown {what} {err.instance!r}{did_you_mean(err.instance, map(str, allowed))}. "
            f"Known: {known}",
            pointer=ptr, file=file, given=err.instance, allowed=allowed,
        )
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return Problem(
            f"required field '{missing}' is missing",
            pointer=ptr, file=file, allowed=err.validator_value,
            hint=f"add \"{missing}\" to this object",
        )
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        known = sorted(err.schema.get("properties", {}))
        hints = "; ".join(f"'{k}'{did_you_mean(k, known)}" for k in extra)
        return Problem(
            f"unknown key(s) {hints}. Known keys: {', '.join(known)}",
            pointer=ptr, file=file, given=extra, allowed=known,
        )
    if err.validator == "type":
        expected = err.validator_value
        return Problem(
            f"expected {expected if isinstance(expected, str) else ' or '.join(expected)}, "
            f"got {type(err.instance).__name__} {err.instance!r:.60}",
            pointer=ptr, file=file, given=given, allowed=expected,
        )
    if err.validator in ("oneOf", "anyOf"):
        kinds = _alternatives(err)
        return Problem(
            f"expected one of: {', '.join(kinds)}; got {type(err.instance).__name__} {err.instance!r:.60}",
            pointer=ptr, file=file, given=given, allowed=kinds,
        )
    return Problem(err.message, pointer=ptr, file=file, given=given, allowed=err.validator_value)
