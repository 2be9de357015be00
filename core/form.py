"""One form logic: what a Hiplot form shows for a request, used by the server and the web form.

A form is judged from the request (its params filled with defaults) and from the texts of
its inputs: pasted tables and the heads of uploaded files. :func:`judge` does it once::

    state = judge(plugin.ui, params, files={"cls": "#numeric\\n..."})
    state.shown["extra"]            # keys of the extra widgets shown
    state.items(widget)             # computed options (items_func)
    state.maximum(widget)           # computed slider maximum (max_func)
    state.css_class(widget, "col-12")

Hiplot's helpers leave state behind (``retriveUniqueLine`` sets ``this.unique_line``), so
every ``items_func`` is evaluated once, in form order, before any ``if_func``
(:func:`prime`). The web form (dash_app/forms.py) draws from the same state; the server
prunes with it (:func:`prune_hidden`), so both agree on every field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .expressions import ExpressionError, evaluate, to_number, truthy, widgets

#: Bytes of an uploaded file that the form's helpers read (``retriveUniqueLine`` needs a line).
HEAD_BYTES = 64 * 1024
#: Form state that only an uploaded file's content determines.
FILE_STATE = ("unique_line", "retriveUniqueLine")
SECTIONS = ("data", "extra")

FileTexts = Mapping[str, "str | Path | Sequence[Path] | None"]


def hiplot_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """hisci's flat request ``{textarea, data, dataArg, general, extra}`` in Hiplot's shape
    ``{textarea, config: {data, dataArg, general, extra}}`` (``this.params``)."""
    if "config" in params and isinstance(params.get("config"), Mapping):
        return dict(params)
    return {
        "textarea": dict(params.get("textarea") or {}),
        "config": {s: params.get(s) if params.get(s) is not None else {}
                   for s in ("data", "dataArg", "general", "extra")},
    }


def split_table(text: str) -> list[list[str]]:
    """Rows of cells of a pasted table: tab-separated, else comma-separated; blank lines skipped.

    The one table splitter of the form (headers, column values); the runner reads tables
    with pandas (:mod:`hisci.tables`).
    """
    lines = [line for line in (text or "").replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        return []
    sep = "\t" if "\t" in lines[0] else ("," if "," in lines[0] else "\t")
    return [[cell.strip().strip('"') for cell in line.split(sep)] for line in lines]


def file_texts(files: FileTexts | None) -> dict[str, str]:
    """Input id -> text for the form's helpers: texts as given, the head of a file path."""
    out: dict[str, str] = {}
    for key, value in (files or {}).items():
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if isinstance(value, Path):
            with open(value, "rb") as fh:
                value = fh.read(HEAD_BYTES).decode("utf-8", errors="replace")
        if isinstance(value, str) and value:
            out[str(key)] = value
    return out


def _dag_factors(code: str) -> list[str]:
    """Variable names of a dagitty/ggdag graph such as ``y ~ x + z`` or ``x -> y``."""
    names: list[str] = []
    for token in re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", code or ""):
        if token in ("dag", "dagify", "exposure", "outcome", "latent", "labels", "coords", "c",
                     "function", "TRUE", "FALSE"):
            continue
        if token not in names:
            names.append(token)
    return names


def form_context(params: Mapping[str, Any], tables: Mapping[str, str] | None = None,
                 files: FileTexts | None = None) -> dict[str, Any]:
    """The ``this`` of a form: ``params`` in Hiplot's shape, ``tableHeader`` and the helpers.

    Parameters
    ----------
    params : the request with its defaults (flat or Hiplot-shaped).
    tables : table id -> TSV/CSV text (added to ``params.textarea``).
    files : input id -> text (or path) of an uploaded file, for ``retriveUniqueLine``.
        None means "not known": :func:`visible` then shows a field whose visibility only
        the file's content decides.
    """
    hp = hiplot_params(params)
    texts = dict(hp.get("textarea") or {})
    texts.update(tables or {})
    parsed = {tid: split_table(text) for tid, text in texts.items() if isinstance(text, str)}
    known = files is not None
    files = file_texts(files)
    context: dict[str, Any] = {"params": hp, "unique_line": [], "files_known": known}
    context["tableHeader"] = {tid: rows[0] for tid, rows in parsed.items() if rows}

    def select_cols(table_id: Any, *indices: Any) -> list[str]:
        rows = parsed.get(str(table_id)) or []
        out: list[str] = []
        for index in indices or (0,):
            col = int(to_number(index)) if not isinstance(index, str) else (
                rows[0].index(index) if rows and index in rows[0] else -1)
            for row in rows[1:]:
                if 0 <= col < len(row) and row[col] not in out:
                    out.append(row[col])
        return out

    def data_area_factors(input_id: Any) -> list[str]:
        value = (hp["config"].get("data") or {}).get(str(input_id))
        if isinstance(value, Mapping):
            value = value.get("value")
        return _dag_factors(value if isinstance(value, str) else "")

    def unique_line(input_id: Any, line_no: Any) -> list[str]:
        lines = files.get(str(input_id), "").replace("\r\n", "\n").split("\n")
        index = int(to_number(line_no)) - 1
        values: list[str] = []
        if 0 <= index < len(lines):
            for cell in re.split(r"[\s,]+", lines[index].strip().lstrip("#")):
                if cell and cell not in values:
                    values.append(cell)
        context["unique_line"] = values
        return values

    def perplexity(table_id: Any) -> float:
        rows = parsed.get(str(table_id)) or []
        return max(1, (len(rows[0]) - 2) // 3) if rows else 50

    context.update(selectCols=select_cols, getDataAreaFactors=data_area_factors,
                   retriveUniqueLine=unique_line, fetchPerplexity=perplexity)
    return context


def _get(widget: Any, key: str) -> Any:
    return widget.get(key) if isinstance(widget, Mapping) else widget.prop(key)


def items(widget: Any, context: Mapping[str, Any]) -> list[Any] | None:
    """The options ``items_func`` computes (None when there is none or it fails)."""
    func = _get(widget, "items_func")
    if not isinstance(func, str) or not func.strip():
        return None
    try:
        value = evaluate(func, context)
    except ExpressionError:
        return None
    if isinstance(value, list):
        return value
    return None if value is None else [value]


def maximum(widget: Any, context: Mapping[str, Any]) -> float | None:
    """The slider maximum ``max_func`` computes (None when there is none or it fails)."""
    func = _get(widget, "max_func")
    if not isinstance(func, str) or not func.strip():
        return None
    try:
        value = evaluate(func, context)
    except ExpressionError:
        return None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def css_class(widget: Any, context: Mapping[str, Any], default: str) -> str:
    """The grid class: ``class_func`` when it gives a string, else ``class``, else ``default``."""
    func = _get(widget, "class_func")
    if isinstance(func, str) and func.strip():
        try:
            value = evaluate(func, context)
            if isinstance(value, str) and value.strip():
                return value
        except ExpressionError:
            pass
    return _get(widget, "class") or default


def prime(ui: Any, context: dict[str, Any]) -> dict[str, Any]:
    """Evaluate every ``items_func`` once, in form order (inputs, then parameters), before any
    ``if_func`` reads the state they leave behind."""
    for _section, _key, widget in widgets(ui):
        items(widget, context)
    return context


def visible(widget: Any, context: Mapping[str, Any], section: str = "extra") -> bool:
    """Whether a widget is shown, by its ``if`` (a sibling switch's name) and ``if_func``.

    An expression that fails to evaluate shows the widget (a form never hides a field
    because of a plugin bug; ``check_ui_expressions`` reports the bug). When the input
    files are not known, a field that only an uploaded file's content could hide is shown.
    """
    cond = _get(widget, "if")
    if isinstance(cond, str) and cond.strip():
        extra = ((context.get("params") or {}).get("config") or {}).get("extra") or {}
        name = cond.strip()
        if name in extra:
            if not truthy(extra[name]):
                return False
        else:
            try:
                if not truthy(evaluate(name, context)):
                    return False
            except ExpressionError:
                pass
    func = _get(widget, "if_func")
    if isinstance(func, str) and func.strip():
        if not context.get("files_known", True) and any(name in func for name in FILE_STATE):
            return True
        try:
            return truthy(evaluate(func, context))
        except ExpressionError:
            return True
    return True


@dataclass
class FormState:
    """What the form shows for one request: the primed context and the shown keys."""

    context: dict[str, Any]
    shown: dict[str, set[str]] = field(default_factory=dict)

    def items(self, widget: Any) -> list[Any] | None:
        return items(widget, self.context)

    def maximum(self, widget: Any) -> float | None:
        return maximum(widget, self.context)

    def css_class(self, widget: Any, default: str) -> str:
        return css_class(widget, self.context, default)

    def is_shown(self, section: str, key: str) -> bool:
        return key in self.shown.get(section, set()) or section not in SECTIONS


def judge(ui: Any, params: Mapping[str, Any], tables: Mapping[str, str] | None = None,
          files: FileTexts | None = None) -> FormState:
    """The form for ``params`` (defaults filled): primed context and visibility of every widget."""
    context = prime(ui, form_context(params, tables, files))
    shown: dict[str, set[str]] = {s: set() for s in SECTIONS}
    for section, key, widget in widgets(ui):
        if visible(widget, context, section):
            shown[section].add(key)
    return FormState(context, shown)


def active_fields(ui: Any, params: Mapping[str, Any], tables: Mapping[str, str] | None = None,
                  files: FileTexts | None = None) -> dict[str, set[str]]:
    """For each section (``data``, ``extra``), the widget keys shown for these params."""
    return judge(ui, params, tables, files).shown


def prune_hidden(ui: Any, request: Mapping[str, Any], params: Mapping[str, Any],
                 files: FileTexts | None = None) -> dict[str, Any]:
    """``request`` without the ``extra`` values of widgets the form hides for ``params`` (the
    request with its defaults filled in): a hidden field keeps its default, as in Hiplot."""
    extra = request.get("extra")
    if not isinstance(extra, Mapping):
        return dict(request)
    shown = active_fields(ui, params, files=files)["extra"]
    declared = {key for section, key, _ in widgets(ui) if section == "extra"}
    return {**request, "extra": {k: v for k, v in extra.items() if k in shown or k not in declared}}

