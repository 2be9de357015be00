"""One small render function per ui.json widget type (``WIDGET_RENDERERS``).

Each renderer gets a :class:`FieldSpec` and returns the Dash component that edits the value.
Component ids are pattern-matching dicts so one set of callbacks serves every form:

- ``{"type": "hs-field", "sec", "key"}``: a value whose options never change;
- ``{"type": "hs-opt", "sec", "key"}``: a dropdown whose options are computed (dataArg column
  selectors, ``items_func``);
- ``{"type": "hs-max", "sec", "key"}``: a slider whose maximum is computed (``max_func``);
- ``{"type": "hs-table", "key"}``: a hiplot-textarea table (DataTable);
- ``{"type": "hs-file", "key"}``: the store holding an uploaded cloud-file's value and link.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dash import dash_table, dcc, html

from hisci.models.ui import Widget

from .i18n import label, t

FIELD, OPTIONS, MAXFIELD, TABLE, FILE = "hs-field", "hs-opt", "hs-max", "hs-table", "hs-file"
VALUE_TYPES = (FIELD, OPTIONS, MAXFIELD)
TABLE_PAGE_SIZE = 12


def fid(kind: str, sec: str, key: str) -> dict[str, str]:
    return {"type": kind, "sec": sec, "key": key}


@dataclass
class FieldSpec:
    """What a renderer needs: where the value lives, the widget, the current value."""

    section: str            # data | extra | dataArg
    key: str                # widget key ("datTable/1" for the second dataArg selector)
    widget: Widget
    value: Any
    lang: str = "en"
    dynamic_items: bool = False   # items computed (items_func / table header)
    dynamic_max: bool = False
    example_table: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return label(self.widget.label, self.lang, fallback=self.key)

    def id(self, kind: str | None = None) -> dict[str, str]:
        if kind is None:
            kind = OPTIONS if self.dynamic_items else MAXFIELD if self.dynamic_max else FIELD
        return fid(kind, self.section, self.key)


def options(items: list[Any] | None) -> list[dict[str, Any]]:
    """Dropdown options from Hiplot items (plain values or ``{"text", "value"}``).

    hisci extension: an item ``{"value": ..., "requires": "tomopy"}`` is offered only where
    that module imports (the plugin still refuses it at run time, saying why)."""
    out = []
    for item in items or []:
        if isinstance(item, dict) and item.get("requires") and not _importable(item["requires"]):
            continue
        if isinstance(item, dict):
            value = item.get("value", item.get("text"))
            out.append({"label": str(item.get("text", value)), "value": value})
        else:
            out.append({"label": str(item), "value": item})
    return out


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(str(module)) is not None
    except (ImportError, ValueError):
        return False


def _number(value: Any, default: float) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def slider(spec: FieldSpec) -> Any:
    w = spec.widget
    lo, hi = _number(w.min, 0), _number(w.max, 100)
    value = _number(spec.value, lo)
    hi = max(hi, value) if spec.dynamic_max else hi
    step = _number(w.step, 1)
    return dcc.Slider(id=spec.id(), min=lo, max=hi, step=step, value=value, marks=None,
                      allow_direct_input=True, className="hs-slider")


def range_slider(spec: FieldSpec) -> Any:
    w = spec.widget
    lo, hi = _number(w.min, 0), _number(w.max, 100)
    value = spec.value if isinstance(spec.value, list) and len(spec.value) == 2 else [lo, hi]
    return dcc.RangeSlider(id=spec.id(), min=min(lo, *value), max=max(hi, *value),
                           step=_number(w.step, 1), value=value, marks=None, allowCross=False,
                           className="hs-slider")


def switch(spec: FieldSpec) -> Any:
    return dcc.Checklist(id=spec.id(), options=[{"label": spec.label, "value": "on"}],
                         value=["on"] if spec.value else [], className="hs-switch",
                         inputClassName="hs-switch-input")


def _dropdown(spec: FieldSpec, *, searchable: bool) -> Any:
    w = spec.widget
    multi = bool(w.multiple)
    value = spec.value
    if multi and not isinstance(value, list):
        value = [] if value in (None, "") else [value]
    opts = options(w.items)
    known = {o["value"] for o in opts if not isinstance(o["value"], (list, dict))}
    for v in value if isinstance(value, list) else [value]:
        if v not in (None, "") and not isinstance(v, (list, dict)) and v not in known:
            opts.append({"label": str(v), "value": v})  # keep a value not (yet) among the items
    return dcc.Dropdown(id=spec.id(), options=opts, value=value, multi=multi,
                        searchable=searchable, clearable=bool(w.prop("clearable", multi) or multi
                                                              or spec.section == "dataArg"),
                        placeholder=spec.label, className="hs-select")


def select(spec: FieldSpec) -> Any:
    return _dropdown(spec, searchable=False)


def autocomplete(spec: FieldSpec) -> Any:
    return _dropdown(spec, searchable=True)


def _safe_dom_id(spec: FieldSpec) -> str:
    return "hs-list-" + re.sub(r"[^A-Za-z0-9_-]", "_", f"{spec.section}-{spec.key}")


def combobox(spec: FieldSpec) -> Any:
    """Free text with suggestions: an input with a datalist; a multi-select when ``multiple``
    or when its items are computed (then the suggestions are the only choices)."""
    if spec.widget.multiple or spec.dynamic_items:
        return _dropdown(spec, searchable=True)
    list_id = _safe_dom_id(spec)
    value = "" if spec.value is None else str(spec.value)
    return html.Div([
        dcc.Input(id=spec.id(), type="text", value=value, list=list_id, debounce=False,
                  placeholder=spec.label, className="hs-input", autoComplete="off"),
        html.Datalist(id=list_id, children=[html.Option(value=str(o["value"]))
                                            for o in options(spec.widget.items)]),
    ])


def text_field(spec: FieldSpec) -> Any:
    value = "" if spec.value is None else spec.value
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return dcc.Input(id=spec.id(), type="text", value=str(value), placeholder=spec.label,
                     className="hs-input")


def color_picker(spec: FieldSpec) -> Any:
    value = spec.value if isinstance(spec.value, str) else ""
    swatch = {"background": value or "transparent"}
    return html.Div(className="hs-color", children=[
        html.Span(className="hs-swatch", style=swatch,
                  id=fid("hs-swatch", spec.section, spec.key)),
        dcc.Input(id=spec.id(), type="text", value=value, placeholder="#1f77b4",
                  className="hs-input hs-color-input"),
    ])


def codemirror(spec: FieldSpec) -> Any:
    value = spec.value
    if isinstance(value, dict):
        value = value.get("value", "")
    return dcc.Textarea(id=spec.id(), value="" if value is None else str(value),
                        className="hs-code", spellCheck=False, rows=10)


def _exts_accept(exts: list[str]) -> str:
    return ",".join("." + e.lstrip(".") for e in exts) if exts else ""


def cloud_file(spec: FieldSpec) -> Any:
    w = spec.widget
    value = spec.value if isinstance(spec.value, dict) else {"value": spec.value or "", "link": ""}
    allowed = t("form.file.allowed", spec.lang, exts=", ".join(w.exts)) if w.exts else ""
    return html.Div(className="hs-file", children=[
        dcc.Upload(id=fid("hs-upload", spec.section, spec.key), multiple=bool(w.multiple),
                   accept=_exts_accept(w.exts), className="hs-drop",
                   children=html.Div([t("form.file.choose", spec.lang),
                                      html.Small(" " + allowed if allowed else "")])),
        html.Div(id=fid("hs-file-info", spec.section, spec.key), className="hs-file-info",
                 children=describe_file(value)),
        dcc.Store(id=fid(FILE, spec.section, spec.key), data=value),
    ])


def describe_file(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    names = value.get("value")
    names = names if isinstance(names, list) else [names] if names else []
    sizes = value.get("size")
    sizes = sizes if isinstance(sizes, list) else [sizes] * len(names)
    parts = [f"{n} ({human_size(s)})" if isinstance(s, (int, float)) else str(n)
             for n, s in zip(names, sizes)]
    return ", ".join(parts)


def human_size(size: float | None) -> str:
    if size is None:
        return ""
    size = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


# ---------------------------------------------------------------- tables (hiplot-textarea)

def parse_tsv(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a pasted table (tab-separated, or comma-separated)."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return [], []
    delimiter = "\t" if "\t" in lines[0] else ("," if "," in lines[0] else "\t")
    rows = list(csv.reader(lines, delimiter=delimiter))
    header, body = rows[0], rows[1:]
    width = max([len(header)] + [len(r) for r in body])
    header = header + [f"V{i + 1}" for i in range(len(header), width)]
    return header, [r + [""] * (width - len(r)) for r in body]


def table_from_text(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(columns, data) of a DataTable holding ``text``; an empty table has 3 blank columns."""
    header, rows = parse_tsv(text)
    if not header:
        header, rows = ["A", "B", "C"], [["", "", ""] for _ in range(5)]
    columns = [column(f"c{i}", name) for i, name in enumerate(header)]
    data = [{f"c{i}": cell for i, cell in enumerate(row)} for row in rows]
    return columns, data


def column(col_id: str, name: str) -> dict[str, Any]:
    return {"id": col_id, "name": name, "renamable": True, "deletable": True}


def table_to_text(columns: list[dict[str, Any]] | None, data: list[dict[str, Any]] | None) -> str:
    """TSV text of a DataTable; "" when every cell is blank (the table counts as not given)."""
    columns = columns or []
    rows = [[_cell(row.get(c["id"])) for c in columns] for row in (data or [])]
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow([str(c.get("name", c["id"])) for c in columns])
    writer.writerows(rows)
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def hiplot_textarea(spec: FieldSpec) -> Any:
    columns, data = table_from_text(spec.value or "")
    key, lang = spec.key, spec.lang
    buttons = [
        html.Button(t("form.table.add_row", lang), id=fid("hs-addrow", "data", key), className="hs-btn-small"),
        html.Button(t("form.table.add_col", lang), id=fid("hs-addcol", "data", key), className="hs-btn-small"),
    ]
    if spec.example_table:
        buttons.append(html.Button(t("form.table.example", lang), id=fid("hs-tblexample", "data", key),
                                   className="hs-btn-small"))
    exts = spec.widget.exts or ["txt", "tsv", "csv"]
    return html.Div(className="hs-table", children=[
        html.Div(buttons + [
            dcc.Upload(id=fid("hs-tblupload", "data", key), accept=_exts_accept(exts),
                       className="hs-drop hs-drop-inline",
                       children=html.Span(t("form.table.upload", lang) + f" ({', '.join(exts)})")),
        ], className="hs-toolbar"),
        dash_table.DataTable(
            id=fid(TABLE, "data", key), columns=columns, data=data, editable=True,
            row_deletable=True, page_size=TABLE_PAGE_SIZE, page_action="native",
            style_table={"overflowX": "auto"},
            style_cell={"fontFamily": "inherit", "fontSize": "13px", "minWidth": "60px",
                        "maxWidth": "240px", "textAlign": "left"},
            style_header={"fontWeight": "600", "background": "#f1f3f5"},
        ),
        html.Details(className="hs-paste", children=[
            html.Summary(t("form.table.paste", lang)),
            dcc.Textarea(id=fid("hs-pastebox", "data", key), className="hs-code", rows=5,
                         placeholder="sample\tx\ty\na\t1\t2"),
            html.Button(t("form.table.apply", lang), id=fid("hs-pasteapply", "data", key),
                        className="hs-btn-small"),
        ]),
    ])


def unknown(spec: FieldSpec) -> Any:
    return html.Div(t("form.unknown_widget", spec.lang, type=spec.widget.type),
                    className="hs-problem")


Renderer = Callable[[FieldSpec], Any]

#: ui.json widget type -> render function.
WIDGET_RENDERERS: dict[str, Renderer] = {
    "slider": slider,
    "range-slider": range_slider,
    "switch": switch,
    "select": select,
    "autocomplete": autocomplete,
    "combobox": combobox,
    "text-field": text_field,
    "color-picker": color_picker,
    "hiplot-textarea": hiplot_textarea,
    "cloud-file": cloud_file,
    "codemirror": codemirror,
}


def render(spec: FieldSpec) -> Any:
    return WIDGET_RENDERERS.get(spec.widget.type, unknown)(spec)
