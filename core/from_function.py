"""Make a plugin's data.json and ui.json from a Python function (``hicli new --from-function``).

The signature, type hints, defaults and numpydoc docstring say everything a form needs,
the way magicgui and typer read them:

=======================================  =====================================================
parameter                                widget
=======================================  =====================================================
``bool``                                 ``switch``
``int``/``float`` with both bounds       ``slider`` (bounds from ``Annotated[float, Ge(0),
                                         Le(1)]``, ``Annotated[int, {"min": 1, "max": 9}]``
                                         or the docstring: "in [0, 1]", "between 1 and 9")
``int``/``float`` otherwise              ``text-field``
``Literal[...]``, an ``Enum``, or a      ``select`` (``list[Literal[...]]``: ``multiple``)
numpydoc ``{'a', 'b'}`` type
``str``                                  ``text-field`` (``color-picker`` for a colour name)
``pathlib.Path``                         ``cloud-file`` input (``data``); required without default
``pandas.DataFrame``                     ``hiplot-textarea`` table input (``data``)
=======================================  =====================================================

A parameter named ``xp`` receives the array module (numpy or cupy); ``*args``/``**kwargs``
are left out. The generated plugin.py calls :func:`call_with_context`, which converts the
form's values back to the annotated types, and :func:`save_result`, which saves what the
function returns.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import inspect
import json
import math
import re
import sys
import sysconfig
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from .errors import InputError

__all__ = ["FunctionSpec", "ParamInfo", "call_with_context", "describe_function", "load_function",
           "parse_numpydoc", "save_result", "write_function_plugin"]

LABEL_CLASS = "col-12 col-md-6"
SPECIAL = {"xp"}


@dataclass
class ParamInfo:
    """One function parameter as hisci sees it."""

    name: str
    kind: str                      # bool, int, float, str, choice, path, table, other
    widget: dict[str, Any]
    default: Any = None
    required: bool = False
    section: str = "extra"         # extra (a value) or data (an input)


@dataclass
class FunctionSpec:
    """What ``describe_function`` found, ready to be written as data.json and ui.json."""

    function: Callable[..., Any]
    title: str
    intro: str
    params: list[ParamInfo]
    data_json: dict[str, Any]
    ui_json: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    #: The module the author named (``scipy.signal``), used in the import of plugin.py.
    import_from: str = ""


# --------------------------------------------------------------------------- loading


def load_function(target: str) -> Callable[..., Any]:
    """Import ``package.module:function`` or ``path/to/file.py:function``.

    The current folder is importable, as it is for ``python -m``.
    """
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"function {target!r}: expected MODULE:FUNCTION (e.g. mylib.fit:fit_peak)",
                         given=target)
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except (ImportError, FileNotFoundError) as exc:
        raise InputError(f"function {target!r}: cannot import {module_name}: {exc}", given=target,
                         hint="make the module importable: work from the folder that holds it, or install it") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise InputError(f"function {target!r}: {module_name} has no function {attr!r}", given=target,
                         allowed=sorted(n for n, v in vars(module).items() if inspect.isfunction(v)
                                        and not n.startswith("_")))
    return func


# --------------------------------------------------------------------------- numpydoc


def parse_numpydoc(doc: str | None) -> tuple[str, dict[str, tuple[str, str]]]:
    """The summary line and ``{name: (type text, description)}`` of the Parameters section."""
    text = inspect.cleandoc(doc or "")
    lines = text.splitlines()
    summary = lines[0].strip() if lines else ""
    params: dict[str, tuple[str, str]] = {}
    inside, current = False, []
    for i, line in enumerate(lines):
        underline = i + 1 < len(lines) and re.fullmatch(r"\s*-{3,}\s*", lines[i + 1] or "")
        if underline:
            inside = line.strip().lower() in ("parameters", "other parameters")
            current = []
            continue
        if not inside or re.fullmatch(r"\s*-{3,}\s*", line):
            continue
        if line and not line[0].isspace():
            names, _, kind = line.partition(":")
            current = [n.strip().lstrip("*") for n in names.split(",") if n.strip()]
            for name in current:
                params[name] = (kind.strip(), "")
        elif current and line.strip():
            for name in current:
                kind, desc = params[name]
                params[name] = (kind, f"{desc} {line.strip()}".strip())
    return summary, params


NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
BOUND_PATTERNS = (
    re.compile(rf"[\[(]\s*({NUM})\s*,\s*({NUM})\s*[\])]"),                 # in [0, 1] / (0, 10]
    re.compile(rf"between\s+({NUM})\s+and\s+({NUM})", re.IGNORECASE),               # between 1 and 9
    re.compile(rf"from\s+({NUM})\s+to\s+({NUM})", re.IGNORECASE),                    # from 1 to 9
    re.compile(rf"({NUM})\s*<=?\s*\w+\s*<=?\s*({NUM})"),                    # 0 <= x <= 1
    re.compile(rf"({NUM})\s*(?:\.\.|–|—)\s*({NUM})"),                       # 0..1, 0–1
)


def _bounds_from_text(text: str) -> tuple[float | None, float | None]:
    for pattern in BOUND_PATTERNS:
        match = pattern.search(text)
        if match:
            return float(match.group(1)), float(match.group(2))
    return None, None


def _choices_from_text(kind: str) -> list[str] | None:
    match = re.search(r"\{([^}]*)\}", kind)
    if not match:
        return None
    items = [item.strip().strip("'\"") for item in match.group(1).split(",")]
    return [item for item in items if item] or None


# --------------------------------------------------------------------------- describing


def describe_function(func: Callable[..., Any], *, tool: str, module: str = "community",
                      import_from: str = "") -> FunctionSpec:
    """Read ``func``'s signature, hints and docstring into a :class:`FunctionSpec`.

    ``import_from`` is the module the generated plugin.py imports ``func`` from when it is
    not copied (default: ``func.__module__``).
    """
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable forward references: fall back to the raw ones
        hints = {k: p.annotation for k, p in signature.parameters.items()
                 if p.annotation is not inspect.Parameter.empty}
    summary, docs = parse_numpydoc(func.__doc__)
    params, notes = [], []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or name in SPECIAL:
            continue
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        kind_text, description = docs.get(name, ("", ""))
        info = describe_parameter(name, hints.get(name, inspect.Parameter.empty), default,
                                  parameter.default is inspect.Parameter.empty, kind_text, description)
        if info.section == "extra" and parameter.default is inspect.Parameter.empty:
            notes.append(f"parameter '{name}' has no default, so the form starts it at {info.default!r}; "
                         "give it a default, or annotate it as Path or DataFrame to make it an input")
        if info.kind == "other":
            notes.append(f"parameter '{name}': type {_type_name(hints.get(name))} has no widget of its own; "
                         "it is a text-field (lists: comma-separated); check ui.json")
        params.append(info)
    title = func.__name__.replace("_", " ").capitalize()
    spec = FunctionSpec(func, title, summary or title, params, {}, {}, notes, import_from)
    spec.data_json, spec.ui_json = _data_json(spec, tool, module), _ui_json(spec)
    if any(p.required for p in params):
        spec.notes.append("required inputs have no example: put a small one in example/, add an "
                          "exampleData entry to data.json, then record the plugin's expected outputs")
    return spec


def describe_parameter(name: str, hint: Any, default: Any, required: bool, kind_text: str = "",
                       description: str = "") -> ParamInfo:
    """The widget for one parameter (see the module docstring for the rules)."""
    base, metadata, _ = _unwrap(hint)
    if base is inspect.Parameter.empty and default is not None:
        base = type(default)
    label = {"en": _label(name, description), "zh_cn": ""}
    bounds = _bounds_from_metadata(metadata)
    if bounds == (None, None):
        bounds = _bounds_from_text(description)
    choices = _choices(base) or _choices_from_text(kind_text)
    multiple = False
    if choices is None and typing.get_origin(base) in (list, tuple, set):
        inner = typing.get_args(base)
        choices = _choices(inner[0]) if inner else None
        multiple = choices is not None
    widget: dict[str, Any] = {"label": label, "class": LABEL_CLASS}
    if _is_table(base):
        widget.update(type="hiplot-textarea", required=required, exts=["txt", "tsv", "csv", "xlsx"])
        widget["class"] = "col-12"
        return ParamInfo(name, "table", widget, None, required, "data")
    if isinstance(base, type) and issubclass(base, PurePath):
        widget.update(type="cloud-file", required=required, icon="mdi-file")
        widget["class"] = "col-12"
        return ParamInfo(name, "path", widget, None if default is None else str(default), required, "data")
    if base is bool:
        widget["type"] = "switch"
        return ParamInfo(name, "bool", widget, bool(default) if default is not None else False)
    if choices is not None:
        widget.update(type="select", items=choices)
        if multiple:
            widget["multiple"] = True
        value = _enum_value(default) if default is not None else ([] if multiple else choices[0])
        return ParamInfo(name, "choice", widget, value)
    if base in (int, float):
        return _number(name, base, default, bounds, widget)
    widget["type"] = "text-field"
    if base is str and re.search(r"colou?r", name) and isinstance(default, str) and default.startswith("#"):
        widget["type"] = "color-picker"
    kind = "str" if base in (str, inspect.Parameter.empty) else "other"
    if default is not None and not isinstance(default, (str, int, float)):
        default = ", ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
    return ParamInfo(name, kind, widget, "" if default is None else default)


def _number(name: str, base: type, default: Any, bounds: tuple[Any, Any], widget: dict[str, Any]) -> ParamInfo:
    lo, hi = bounds
    kind = "int" if base is int else "float"
    if lo is not None and hi is not None:
        step = 1 if base is int else _nice_step((hi - lo) / 100)
        widget.update(type="slider", min=_plain_number(lo, base), max=_plain_number(hi, base), step=step)
        value = default if default is not None else _plain_number(lo, base)
    else:
        widget["type"] = "text-field"
        value = default if default is not None else 0
    return ParamInfo(name, kind, widget, value)


def _unwrap(hint: Any) -> tuple[Any, list[Any], bool]:
    """``Annotated[Optional[X], m...]`` -> (X, [m...], True)."""
    metadata: list[Any] = []
    optional = False
    while True:
        origin = typing.get_origin(hint)
        if origin is typing.Annotated:
            hint, *extra = typing.get_args(hint)
            metadata += extra
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = len(args) < len(typing.get_args(hint))
            if len(args) != 1:
                return hint, metadata, optional
            hint = args[0]
        else:
            return hint, metadata, optional


def _bounds_from_metadata(metadata: list[Any]) -> tuple[Any, Any]:
    lo = hi = None
    for item in metadata:
        if isinstance(item, dict):
            lo = item.get("min", item.get("ge", item.get("gt", lo)))
            hi = item.get("max", item.get("le", item.get("lt", hi)))
            continue
        for attr in ("ge", "gt", "min"):
            if getattr(item, attr, None) is not None and isinstance(getattr(item, attr), (int, float)):
                lo = getattr(item, attr)
        for attr in ("le", "lt", "max"):
            if getattr(item, attr, None) is not None and isinstance(getattr(item, attr), (int, float)):
                hi = getattr(item, attr)
        nested = getattr(item, "metadata", None)  # pydantic Field(ge=..., le=...)
        if isinstance(nested, list) and nested:
            sub = _bounds_from_metadata(nested)
            lo, hi = sub[0] if sub[0] is not None else lo, sub[1] if sub[1] is not None else hi
    return lo, hi


def _choices(hint: Any) -> list[Any] | None:
    if typing.get_origin(hint) is typing.Literal:
        return list(typing.get_args(hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return [_enum_value(member) for member in hint]
    return None


def _enum_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value.value, (str, int, float)) else value.name
    return value


def _is_table(hint: Any) -> bool:
    return isinstance(hint, type) and hint.__name__ == "DataFrame" and hint.__module__.startswith("pandas")


def _label(name: str, description: str) -> str:
    if description:
        first = re.split(r"(?<=[.;])\s", description, maxsplit=1)[0].rstrip(".;")
        first = re.sub(r",?\s*(in|between|from)\s+[\[(]?\s*" + NUM + r".*$", "", first).strip()
        if 0 < len(first) <= 60:
            return first[0].upper() + first[1:]
    return name.replace("_", " ").capitalize()


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 0.01
    power = 10 ** math.floor(math.log10(raw))
    return float(f"{min(m * power for m in (1, 2, 5, 10) if m * power >= raw):.6g}")


def _plain_number(value: Any, base: type) -> Any:
    return int(value) if base is int and float(value).is_integer() else float(value)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


# --------------------------------------------------------------------------- JSON


def _data_json(spec: FunctionSpec, tool: str, module: str) -> dict[str, Any]:
    config: dict[str, Any] = {"data": {}, "general": {"imageExportType": ["plotly"]}, "extra": {}}
    textarea: dict[str, str] = {}
    for p in spec.params:
        if p.section == "data":
            config["data"][p.name] = {"value": p.default or "", "link": p.default or ""}
            if p.kind == "table":
                textarea[p.name] = ""
        else:
            config["extra"][p.name] = p.default
    params: dict[str, Any] = {"config": config}
    if textarea:
        params = {"textarea": textarea, "config": config}
    document: dict[str, Any] = {"module": module, "tool": tool, "params": params}
    if not any(p.required for p in spec.params):
        document["exampleData"] = [{"config": {}}]
    return document


def _ui_json(spec: FunctionSpec) -> dict[str, Any]:
    ui: dict[str, Any] = {"data": {}, "extra": {}}
    for p in spec.params:
        ui[p.section][p.name] = {"type": p.widget["type"], **p.widget}
    return ui


# --------------------------------------------------------------------------- running


def call_with_context(func: Callable[..., Any], ctx: Any) -> Any:
    """Call ``func`` with the run's parameters, converted back to its annotated types:
    inputs become a Path (``ctx.input``) or a DataFrame (``ctx.table``), numbers are
    parsed from text fields, Enum members are looked up, ``xp`` is the array module."""
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # noqa: BLE001
        hints = {}
    kwargs: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name == "xp":
            kwargs[name] = ctx.xp
            continue
        base, _, _ = _unwrap(hints.get(name, inspect.Parameter.empty))
        if _is_table(base):
            if ctx.has_input(name) or (ctx.params.get("textarea") or {}).get(name):
                kwargs[name] = ctx.table(name)
        elif isinstance(base, type) and issubclass(base, PurePath):
            if ctx.has_input(name):
                kwargs[name] = base(ctx.input(name))
        elif name in ctx.params.get("extra", {}):
            kwargs[name] = _convert(name, ctx.params["extra"][name], base)
    return func(**kwargs)


def _convert(name: str, value: Any, base: Any) -> Any:
    try:
        if base in (int, float) and not isinstance(value, bool):
            number = float(value)
            return int(number) if base is int and number.is_integer() else number
        if isinstance(base, type) and issubclass(base, enum.Enum):
            return _enum_member(base, value)
        if typing.get_origin(base) in (list, tuple, set) and typing.get_args(base):
            inner = typing.get_args(base)[0]
            if isinstance(value, str):  # a text-field: "1, 2.5, 4"
                value = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
            items = value if isinstance(value, list) else [value]
            return typing.get_origin(base)(_convert(name, v, inner) for v in items)
    except (TypeError, ValueError):
        raise InputError(f"parameter '{name}': {value!r} is not a valid {_type_name(base)}",
                         pointer=f"/extra/{name}", given=value) from None
    return value


def _enum_member(cls: type[enum.Enum], value: Any) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        return cls[value]


def save_result(ctx: Any, value: Any, name: str = "result") -> dict[str, Any]:
    """Save what the function returned and give the summary for result.json.

    A dict or a number goes into result.json; an array is saved as ``<name>.npy``; a
    DataFrame as ``<name>.csv``; a plotly figure as a figure; a tuple item by item.
    """
    if isinstance(value, tuple):
        summary: dict[str, Any] = {}
        for i, item in enumerate(value):
            summary.update(save_result(ctx, item, f"{name}_{i}"))
        return summary
    if value is None:
        return {}
    if hasattr(value, "to_plotly_json") and hasattr(value, "write_html"):
        ctx.save_figure(value, name)
        return {}
    if hasattr(value, "to_csv") and hasattr(value, "columns"):
        value.to_csv(ctx.output_dir / f"{name}.csv", index=False)
        return {f"{name}_rows": len(value), f"{name}_columns": [str(c) for c in value.columns]}
    if hasattr(value, "shape") and hasattr(value, "dtype") and getattr(value, "ndim", 0) > 0:
        ctx.save_array(f"{name}.npy", value)
        return {f"{name}_shape": [int(n) for n in value.shape]}
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return {name: _json_value(value)}


def _json_value(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (enum.Enum, PurePath)):
        return str(value.value if isinstance(value, enum.Enum) else value)
    return value


# --------------------------------------------------------------------------- writing


PLUGIN_PY = '''"""{title}: the glue between hisci and {qualname}.

Generated by ``hicli new NAME --from-function {target}``. ``run(ctx)`` passes the
form's values to the function (converted to its annotated types) and saves what it returns.
"""

from __future__ import annotations

from hisci import RunContext
from hisci.from_function import call_with_context, save_result

{import_line}


def run(ctx: RunContext) -> dict:
    """Call ``{func}`` with the parameters of data.json/ui.json; return its summary."""
    ctx.progress(0.1, "calling {func}")
    value = call_with_context({func}, ctx)
    ctx.progress(0.9, "saving the result")
    return save_result(ctx, value)
'''

TEST_PY = '''"""Tests of {name}: every example against tests/expected.json (see hisci.testing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hisci.testing import check_plugin

PROJECT = Path(__file__).parents[1]


def test_examples_match_the_expectations(tmp_path: Path) -> None:
    if not (PROJECT / "tests" / "expected.json").is_file():
        pytest.fail("no expectations yet: add exampleData, then run `hicli test . --update`")
    check_plugin(PROJECT, workdir=tmp_path)
'''


def write_function_plugin(spec: FunctionSpec, project: Path, values: dict[str, str]) -> None:
    """Turn a freshly rendered template project into the plugin of ``spec.function``.

    The function's module is copied into the plugin folder when it is a single file of the
    author's (not an installed package); otherwise plugin.py imports it by name and
    meta.json's ``runtime.requires`` names its distribution.
    """
    name = values["name"]
    folder = project / name
    func = spec.function
    module = sys.modules[func.__module__]
    source = Path(getattr(module, "__file__", "") or "")
    local = source.suffix == ".py" and source.name != "__init__.py" and not _installed(source)
    if local:
        copy_name = source.stem if source.stem not in ("plugin", "__init__") else "method"
        (folder / f"{copy_name}.py").write_text(source.read_text("utf-8"), encoding="utf-8")
        import_line = f"from .{copy_name} import {func.__name__}"
    else:
        import_line = f"from {spec.import_from or func.__module__} import {func.__name__}"
    for stale in (folder / "algorithm.py", project / "tests" / "examples.json"):
        stale.unlink(missing_ok=True)
    for example in (folder / "example").glob("*"):
        example.unlink()
    (folder / "example" / "README.md").write_text(
        "Put a small example input here and point data.json's exampleData at it "
        "(e.g. \"link\": \"example/input.txt\").\n", encoding="utf-8")
    where = spec.import_from or func.__module__
    (folder / "plugin.py").write_text(PLUGIN_PY.format(
        title=spec.title, qualname=f"{where}.{func.__qualname__}", func=func.__name__,
        target=f"{where}:{func.__name__}", import_line=import_line), encoding="utf-8")
    (project / "tests" / "test_plugin.py").write_text(TEST_PY.format(name=name), encoding="utf-8")
    for file, document in (("data.json", spec.data_json), ("ui.json", spec.ui_json)):
        (folder / file).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _update_meta(folder / "meta.json", spec, local, func.__module__)
    (folder / "README.md").write_text(_readme(spec, name), encoding="utf-8")


def _installed(path: Path) -> bool:
    """True for the standard library and installed packages (imported, never copied)."""
    roots = {Path(p).resolve() for k, p in sysconfig.get_paths().items()
             if k in ("stdlib", "platstdlib", "purelib", "platlib")}
    path = path.resolve()
    return any(root in path.parents for root in roots) or bool({"site-packages", "dist-packages"} & set(path.parts))


def _update_meta(path: Path, spec: FunctionSpec, local: bool, module: str) -> None:
    meta = json.loads(path.read_text("utf-8"))
    meta["name"]["en"], meta["intro"]["en"] = spec.title, spec.intro
    if not local:
        meta["runtime"]["requires"] = [module.split(".")[0]]
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _readme(spec: FunctionSpec, name: str) -> str:
    rows = "\n".join(f"| `{p.name}` | {p.section} | {p.widget['type']} | {json.dumps(p.default)} | "
                     f"{p.widget['label']['en']} |" for p in spec.params)
    doc = inspect.cleandoc(spec.function.__doc__ or spec.intro)
    return (f"# {spec.title}\n\n{spec.intro}\n\nGenerated from `{spec.function.__module__}."
            f"{spec.function.__qualname__}` by `hicli new --from-function`.\n\n"
            f"| parameter | section | widget | default | label |\n| --- | --- | --- | --- | --- |\n{rows}\n\n"
            f"## The function's documentation\n\n```text\n{doc}\n```\n\n"
            f"Test with `hicli test .`, preview with `hicli preview .`; see LICENSE ({name}).\n")
