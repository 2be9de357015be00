"""Forms drawn from a plugin's ui.json, and the callbacks that keep them honest.

``build_form(plugin, lang)`` returns the layout: one input per declared widget (``data``,
``dataArg`` column selectors, ``extra``), laid out on the responsive grid named by each
widget's Hiplot ``class``. The callbacks registered by :func:`register_form_callbacks`
collect the values into a request, show or hide fields by ``if``/``if_func``, fill computed
options (``items_func``, table headers), and validate the request with the plugin's own
``validate_request``: its problems appear next to the fields they point at, and the submit
button stays disabled while there are any. Nothing here re-implements validation.
"""

from __future__ import annotations

import base64
import copy
import io
from collections.abc import Callable, Iterable
from typing import Any

from dash import ALL, MATCH, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from hisci import HisciError, Plugin
from hisci import form as F
from hisci.models.ui import Widget

from . import widgets as W
from .i18n import GENERAL_LABELS, label, norm_lang, t

WRAP, ERROR = "hs-wrap", "hs-err"
DEFAULT_CLASS = "col-12"

Resolver = Callable[[Any], "Plugin | None"]


# ------------------------------------------------------------------------------ layout

#: config.general keys that are server bookkeeping, not settings a user edits.
GENERAL_SKIP = {"cmd", "cmds", "taskname", "cliMode", "plumber"}
EXPORT_FORMATS = ["jpeg", "pdf", "png", "svg", "tiff", "plotly", "pptx", "html"]
CHOICES = {"legendPos": ["right", "bottom", "top", "left", "none"],
           "legendDir": ["vertical", "horizontal"]}


def general_fields(plugin: Plugin) -> list[tuple[str, str, Widget]]:
    """Hiplot's "General" panel, drawn from the keys present in ``config.general`` (scalar
    values and ``imageExportType``; the ui.json ``general.imageExportType`` toggles add or
    hide formats)."""
    general = plugin.data.config.get("general") or {}
    toggles = (plugin.ui.general or {}).get("imageExportType") or {}
    toggles = toggles if isinstance(toggles, dict) else {}
    fields = []
    for key, value in general.items():
        if key in GENERAL_SKIP:
            continue
        spec: dict[str, Any] = {"label": GENERAL_LABELS.get(key, key), "class": "col-12 col-md-4"}
        if key == "imageExportType":
            current = value if isinstance(value, list) else [value] if value else []
            items = [f for f in dict.fromkeys(EXPORT_FORMATS + [k for k, v in toggles.items() if v] + current)
                     if toggles.get(f, True) or f in current]
            spec.update(type="select", multiple=True, items=items, **{"class": "col-12 col-md-8"})
        elif key in CHOICES and isinstance(value, str):
            spec.update(type="select", items=list(dict.fromkeys(CHOICES[key] + ([value] if value else []))))
        elif isinstance(value, bool):
            spec.update(type="switch")
        elif isinstance(value, (int, float, str)):
            spec.update(type="text-field")
        else:
            continue  # size {width, height}, palette lists: kept as data.json has them
        fields.append(("general", key, Widget.model_validate(spec)))
    return fields


def field_list(plugin: Plugin) -> list[tuple[str, str, Widget]]:
    """Every drawn field as (section, key, widget), in form order: inputs, columns, extra,
    then the general settings."""
    fields: list[tuple[str, str, Widget]] = []
    for key, widget in plugin.ui.data.items():
        fields.append(("data", key, widget))
    for table, items in plugin.ui.dataArg.items():
        for i, item in enumerate(items):
            widget = Widget.model_validate({
                "type": "select", "label": item.label, "required": item.required,
                "multiple": item.multiple, "class": item.css_class or "col-12 col-md-4",
                "blackItems": list(item.blackItems)})
            fields.append(("dataArg", f"{table}/{i}", widget))
    for key, widget in plugin.ui.extra.items():
        fields.append(("extra", key, widget))
    return fields + general_fields(plugin)


def default_values(plugin: Plugin) -> dict[str, Any]:
    """The params a fresh form starts from (data.json defaults)."""
    return plugin.params.fill_defaults({})


def example_values(plugin: Plugin, index: int = 0) -> dict[str, Any]:
    """The params of exampleData[index] merged over the defaults."""
    return plugin.params.fill_defaults(plugin.example_request(index))


def field_value(params: dict[str, Any], section: str, key: str) -> Any:
    if section == "dataArg":
        table, _, index = key.partition("/")
        items = (params.get("dataArg") or {}).get(table) or []
        i = int(index)
        item = items[i] if i < len(items) and isinstance(items[i], dict) else {}
        return item.get("value", "")
    return (params.get(section) or {}).get(key)


def form_body(plugin: Plugin, lang: str = "en", values: dict[str, Any] | None = None) -> Any:
    """The field grid of a form (what "Load example" replaces)."""
    lang = norm_lang(lang)
    params = copy.deepcopy(values) if values is not None else default_values(plugin)
    state = F.judge(plugin.ui, params)
    example_tables = {}
    for example in plugin.params.examples[:1]:
        example_tables = dict(example.get("textarea") or {})
    groups: dict[str, list[Any]] = {"data": [], "dataArg": [], "extra": [], "general": []}
    for section, key, widget in field_list(plugin):
        groups[section].append(_field(section, key, widget, params, state, lang, example_tables))
    titles = {"data": t("form.inputs", lang), "dataArg": t("form.columns", lang),
              "extra": t("form.parameters", lang), "general": t("form.general", lang)}
    return [html.Fieldset(className=f"hs-group hs-group-{s}", children=[
        html.Legend(titles[s]), html.Div(children, className="hs-row")])
        for s, children in groups.items() if children]


def _field(section: str, key: str, widget: Widget, params: dict[str, Any],
           state: F.FormState, lang: str, example_tables: dict[str, str]) -> Any:
    if section == "data" and widget.type == "hiplot-textarea":
        value = (params.get("textarea") or {}).get(key, "")
    else:
        value = field_value(params, section, key)
    spec = W.FieldSpec(
        section, key, widget, value, lang,
        dynamic_items=section == "dataArg" or bool(widget.prop("items_func")),
        dynamic_max=bool(widget.prop("max_func")) and widget.type == "slider",
        example_table=example_tables.get(key, ""))
    if section == "dataArg":
        table = key.partition("/")[0]
        header = state.context["tableHeader"].get(table, [])
        widget = widget.model_copy(update={"items": _without(header, widget.prop("blackItems"))})
        spec.widget = widget
    elif spec.dynamic_items:
        computed = state.items(widget)
        if computed is not None:
            spec.widget = widget.model_copy(update={"items": computed})
    shown = state.is_shown(section, key)
    title = label(widget.label, lang, fallback=key.replace("/", " "))
    required = " *" if widget.required else ""
    children = []
    if widget.type != "switch":
        children.append(html.Label(title + required, className="hs-label"))
    children += [W.render(spec), html.Div(id=W.fid(ERROR, section, key), className="hs-error")]
    return html.Div(children, id=W.fid(WRAP, section, key),
                    className=wrap_class(widget, state),
                    style={} if shown else {"display": "none"},
                    **{"data-field": f"{section}/{key}", "data-type": widget.type})


def wrap_class(widget: Widget, state: F.FormState) -> str:
    return "hs-col " + state.css_class(widget, DEFAULT_CLASS)


def _without(items: Iterable[Any], black: Any) -> list[Any]:
    black = set(black or [])
    return [i for i in items if i not in black]


def build_form(plugin: Plugin, lang: str = "en", values: dict[str, Any] | None = None,
               ref: dict[str, Any] | None = None, actions: bool = True) -> Any:
    """The Dash layout of ``plugin``'s form.

    Parameters
    ----------
    values : params to start from (``{textarea, data, dataArg, general, extra}``, e.g. a
        job's params for "Run again"); the data.json defaults when None.
    ref : how callbacks find the plugin again (``{"id": plugin.id}`` by default; the
        preview page passes its own key).
    actions : show the "Submit" button (the preview hides it).
    """
    lang = norm_lang(lang)
    ref = ref or {"id": plugin.id}
    notes = []
    if not plugin.runnable:
        notes.append(html.Div(t("form.not_runnable", lang), className="hs-note"))
    submit_style = {} if actions else {"display": "none"}
    has_example = bool(plugin.params.examples)
    return html.Div(className="hs-form", **{"data-plugin": plugin.id}, children=[
        W.dcc.Store(id="hs-form-ref", data=ref),
        W.dcc.Store(id="hs-request", data=None),
        W.dcc.Store(id="hs-live", data=None),  # the live part of the request (plugin page)
        *notes,
        html.Div(id="hs-form-body", children=form_body(plugin, lang, values)),
        html.Div(id="hs-form-errors", className="hs-form-errors"),
        html.Div(className="hs-actions", children=[
            html.Button(t("form.load_example", lang), id="hs-load-example", className="hs-btn",
                        disabled=not has_example),
            html.Button(t("form.submit", lang), id="hs-submit", className="hs-btn hs-primary",
                        disabled=True, style=submit_style),
        ]),
        html.Div(id="hs-submit-msg", className="hs-form-errors"),
    ])


def form_inputs(layout: Any) -> list[tuple[str, str, str]]:
    """(kind, section, key) of every input component in a form layout (used by tests and
    the preview to check that each declared widget got exactly one input)."""
    found: list[tuple[str, str, str]] = []
    kinds = set(W.VALUE_TYPES) | {W.TABLE, W.FILE}

    def walk(node: Any) -> None:
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
            return
        if node is None or isinstance(node, (str, int, float)):
            return
        cid = getattr(node, "id", None)
        if isinstance(cid, dict) and cid.get("type") in kinds:
            found.append((cid["type"], cid["sec"], cid["key"]))
        walk(getattr(node, "children", None))

    walk(layout)
    return found


# ------------------------------------------------------------------------------ values

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _maybe_number(text: Any, like: Any, items: list[Any] | None = None) -> Any:
    if not isinstance(text, str):
        return text
    wants_number = _is_number(like) or (items and all(_is_number(i) for i in items))
    if wants_number and text.strip():
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    return text


def to_param(widget: Widget, raw: Any, default: Any) -> Any:
    """A component value as the parameter value data.json expects."""
    kind = widget.type
    if kind == "switch":
        return bool(raw) and "on" in raw if isinstance(raw, list) else bool(raw)
    if kind in ("select", "autocomplete", "combobox") and widget.multiple:
        return [] if raw in (None, "") else list(raw) if isinstance(raw, list) else [raw]
    if kind == "combobox":
        return _maybe_number("" if raw is None else raw, default, widget.items)
    if kind in ("select", "autocomplete"):
        return "" if raw is None else raw
    if kind == "text-field":
        return _maybe_number("" if raw is None else raw, default)
    if kind in ("slider", "range-slider"):
        return default if raw is None else raw
    if kind in ("color-picker", "codemirror"):
        return "" if raw is None else str(raw)
    return raw


def collect(plugin: Plugin, values: dict[tuple[str, str], Any],
            tables: dict[str, tuple[Any, Any]], files: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request, full params) from the component values of a form.

    ``values`` maps (section, key) to a component value, ``tables`` maps a table id to its
    (columns, data), ``files`` maps a cloud-file key to its stored value. Fields hidden by
    ``if``/``if_func`` are left out of the request (their defaults stand).
    """
    defaults = default_values(plugin)
    request: dict[str, Any] = {"textarea": {}, "data": {}, "dataArg": {}, "extra": {}, "general": {}}
    for key, (columns, data) in tables.items():
        request["textarea"][key] = W.table_to_text(columns, data)
    for key, stored in files.items():
        if isinstance(stored, dict):
            request["data"][key] = {"value": stored.get("value", ""), "link": stored.get("link", "")}
    arg_items: dict[str, dict[int, Any]] = {}
    for section, key, widget in field_list(plugin):
        if (section, key) not in values:
            continue
        raw = values[(section, key)]
        if section == "dataArg":
            table, _, index = key.partition("/")
            multi = widget.multiple
            value = (list(raw) if isinstance(raw, list) else [] if raw in (None, "") else [raw]) \
                if multi else ("" if raw is None else raw)
            arg_items.setdefault(table, {})[int(index)] = value
        else:
            request[section][key] = to_param(widget, raw, field_value(defaults, section, key))
    for table, items in arg_items.items():
        request["dataArg"][table] = [{"value": items[i]} for i in sorted(items)]
    request = {s: v for s, v in request.items() if v}
    params = plugin.params.fill_defaults(request)
    shown = F.judge(plugin.ui, params, files=_file_texts(files)).shown["extra"]
    for key in plugin.ui.extra:
        if key in request.get("extra", {}) and key not in shown:
            del request["extra"][key]
    return request, params


def _file_texts(files: dict[str, Any]) -> dict[str, str]:
    return {k: v.get("text", "") for k, v in files.items() if isinstance(v, dict) and v.get("text")}


def problem_target(pointer: str, known: set[tuple[str, str]]) -> tuple[str, str] | None:
    """The (section, key) of the field a request problem points at, if it is drawn."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if len(parts) < 2:
        return None
    section, key = parts[0], parts[1]
    if section == "textarea":
        section = "data"
    if section == "dataArg":
        index = parts[2] if len(parts) > 2 and parts[2].isdigit() else "0"
        key = f"{key}/{index}"
    return (section, key) if (section, key) in known else None


def check(plugin: Plugin, request: dict[str, Any], files: dict[str, str] | None = None,
          live_inputs: tuple[str, ...] = ()) -> tuple[dict[tuple[str, str], list[str]], list[str]]:
    """Validate with the plugin's own ``validate_request`` (given the uploaded files' texts,
    so the server judges visibility as this form does): (field errors, form errors).
    ``live_inputs`` come from a live source, so they need no file."""
    known = {(s, k) for s, k, _ in field_list(plugin)}
    field_errors: dict[tuple[str, str], list[str]] = {}
    form_errors: list[str] = []
    try:
        plugin.validate_request(request, files=files if files is not None else {}, live_inputs=live_inputs)
    except HisciError as exc:
        for problem in exc.problems:
            target = problem_target(problem.pointer, known)
            if target:
                field_errors.setdefault(target, []).append(problem.message)
            else:
                where = f"{problem.pointer}: " if problem.pointer else ""
                form_errors.append(where + problem.message)
    return field_errors, form_errors


# ------------------------------------------------------------------------------ callbacks

def _decode_upload(contents: str) -> bytes:
    return base64.b64decode(contents.split(",", 1)[1] if "," in contents else contents)


def table_text_from_upload(filename: str, contents: str) -> str:
    """TSV text of an uploaded table file (.txt/.tsv/.csv, or .xlsx through pandas)."""
    raw = _decode_upload(contents)
    name = (filename or "").lower()
    if name.endswith((".xlsx", ".xls")):
        import pandas as pd

        frame = pd.read_excel(io.BytesIO(raw))
        return frame.to_csv(sep="\t", index=False)
    if name.endswith(".gz"):
        import gzip

        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def register_form_callbacks(app: Any, resolve: Resolver,
                            save_upload: Callable[[Any, str, bytes], dict[str, Any]] | None = None) -> None:
    """Register the callbacks every form shares (call once per app).

    ``resolve(ref)`` returns the Plugin a form was built from; ``save_upload(token, name,
    data)`` stores an uploaded cloud file and returns ``{"value", "link", "size"}``.
    """

    @app.callback(
        Output({"type": WRAP, "sec": ALL, "key": ALL}, "style"),
        Output({"type": WRAP, "sec": ALL, "key": ALL}, "className"),
        Output({"type": ERROR, "sec": ALL, "key": ALL}, "children"),
        Output({"type": W.OPTIONS, "sec": ALL, "key": ALL}, "options"),
        Output({"type": W.MAXFIELD, "sec": ALL, "key": ALL}, "max"),
        Output({"type": "hs-swatch", "sec": ALL, "key": ALL}, "style"),
        Output("hs-submit", "disabled"),
        Output("hs-form-errors", "children"),
        Output("hs-request", "data"),
        Input({"type": W.FIELD, "sec": ALL, "key": ALL}, "value"),
        Input({"type": W.OPTIONS, "sec": ALL, "key": ALL}, "value"),
        Input({"type": W.MAXFIELD, "sec": ALL, "key": ALL}, "value"),
        Input({"type": W.TABLE, "sec": ALL, "key": ALL}, "data"),
        Input({"type": W.TABLE, "sec": ALL, "key": ALL}, "columns"),
        Input({"type": W.FILE, "sec": ALL, "key": ALL}, "data"),
        Input("hs-live", "data"),
        State({"type": W.OPTIONS, "sec": ALL, "key": ALL}, "options"),
        State("hs-form-ref", "data"),
        State("hs-lang", "data"),
    )
    def sync(fields, opt_values, max_values, table_data, table_columns, file_data, live,
             current_options, ref, lang):
        plugin = resolve(ref)
        outputs = ctx.outputs_list
        if plugin is None:
            raise PreventUpdate
        lang = norm_lang(lang)
        inputs = ctx.inputs_list
        values: dict[tuple[str, str], Any] = {}
        for group in inputs[:3]:
            for item in group:
                values[(item["id"]["sec"], item["id"]["key"])] = item.get("value")
        tables = {}
        for data_item, col_item in zip(inputs[3], inputs[4]):
            tables[data_item["id"]["key"]] = (col_item.get("value"), data_item.get("value"))
        files = {item["id"]["key"]: item.get("value") for item in inputs[5]}
        request, params = collect(plugin, values, tables, files)
        state = F.judge(plugin.ui, params, files=_file_texts(files))
        context = state.context
        widgets = {(s, k): w for s, k, w in field_list(plugin)}

        styles, classes = [], []
        for item in outputs[0]:
            target = (item["id"]["sec"], item["id"]["key"])
            widget = widgets.get(target)
            shown = widget is None or state.is_shown(*target)
            styles.append({} if shown else {"display": "none"})
            classes.append(wrap_class(widget, state) if widget else "hs-col " + DEFAULT_CLASS)

        live_inputs = tuple(n for part in ("watch", "zmq", "bluesky") for n in ((live or {}).get(part) or {}))
        field_errors, form_errors = check(plugin, request, _file_texts(files), live_inputs)
        errors = []
        for item in outputs[2]:
            messages = field_errors.get((item["id"]["sec"], item["id"]["key"]), [])
            errors.append(html.Ul([html.Li(m) for m in messages]) if messages else None)

        opts = []
        for item, current in zip(outputs[3], current_options):
            section, key = item["id"]["sec"], item["id"]["key"]
            widget = widgets.get((section, key))
            if widget is None:
                opts.append(current or [])
                continue
            if section == "dataArg":
                header = context["tableHeader"].get(key.partition("/")[0], [])
                items = _without(header, widget.prop("blackItems"))
            else:
                items = state.items(widget)
                if items is None:
                    items = widget.items or []
            new = W.options(items)
            value = values.get((section, key))
            known = {o["value"] for o in new}
            for v in value if isinstance(value, list) else [value]:
                if v not in (None, "") and not isinstance(v, (list, dict)) and v not in known:
                    new.append({"label": str(v), "value": v})
            opts.append(new)

        maxes = []
        for item in outputs[4]:
            widget = widgets.get((item["id"]["sec"], item["id"]["key"]))
            value = state.maximum(widget) if widget is not None else None
            maxes.append(value if value is not None else (widget.max if widget and widget.max else 100))

        swatches = []
        for item in outputs[5]:
            colour = values.get((item["id"]["sec"], item["id"]["key"]))
            swatches.append({"background": colour if isinstance(colour, str) and colour else "transparent"})

        invalid = bool(field_errors or form_errors)
        summary = [html.Div(t("form.invalid", lang), className="hs-error-title")] if invalid else []
        if form_errors:
            summary.append(html.Ul([html.Li(m) for m in form_errors]))
        disabled = invalid or not plugin.runnable
        return styles, classes, errors, opts, maxes, swatches, disabled, summary, request

    @app.callback(
        Output({"type": W.TABLE, "sec": MATCH, "key": MATCH}, "columns"),
        Output({"type": W.TABLE, "sec": MATCH, "key": MATCH}, "data"),
        Input({"type": "hs-addrow", "sec": MATCH, "key": MATCH}, "n_clicks"),
        Input({"type": "hs-addcol", "sec": MATCH, "key": MATCH}, "n_clicks"),
        Input({"type": "hs-tblexample", "sec": MATCH, "key": MATCH}, "n_clicks"),
        Input({"type": "hs-pasteapply", "sec": MATCH, "key": MATCH}, "n_clicks"),
        Input({"type": "hs-tblupload", "sec": MATCH, "key": MATCH}, "contents"),
        State({"type": "hs-tblupload", "sec": MATCH, "key": MATCH}, "filename"),
        State({"type": "hs-pastebox", "sec": MATCH, "key": MATCH}, "value"),
        State({"type": W.TABLE, "sec": MATCH, "key": MATCH}, "columns"),
        State({"type": W.TABLE, "sec": MATCH, "key": MATCH}, "data"),
        State("hs-form-ref", "data"),
        prevent_initial_call=True,
    )
    def edit_table(_row, _col, _example, _paste, upload, filename, pasted, columns, data, ref):
        trigger = ctx.triggered_id
        if not isinstance(trigger, dict):
            raise PreventUpdate
        kind, key = trigger["type"], trigger["key"]
        columns, data = list(columns or []), list(data or [])
        if kind == "hs-addrow":
            return columns, data + [{c["id"]: "" for c in columns}]
        if kind == "hs-addcol":
            used = {c["id"] for c in columns}
            n = len(columns)
            while f"c{n}" in used:
                n += 1
            columns.append(W.column(f"c{n}", f"V{len(columns) + 1}"))
            return columns, [dict(row, **{f"c{n}": ""}) for row in data]
        if kind == "hs-tblexample":
            plugin = resolve(ref)
            text = ""
            if plugin is not None and plugin.params.examples:
                text = (plugin.params.examples[0].get("textarea") or {}).get(key, "")
            return W.table_from_text(text)
        if kind == "hs-pasteapply":
            if not (pasted or "").strip():
                raise PreventUpdate
            return W.table_from_text(pasted)
        if kind == "hs-tblupload" and upload:
            try:
                return W.table_from_text(table_text_from_upload(filename, upload))
            except Exception:  # noqa: BLE001 - a bad file leaves the table as it was
                raise PreventUpdate from None
        raise PreventUpdate

    @app.callback(
        Output({"type": W.FILE, "sec": MATCH, "key": MATCH}, "data"),
        Output({"type": "hs-file-info", "sec": MATCH, "key": MATCH}, "children"),
        Input({"type": "hs-upload", "sec": MATCH, "key": MATCH}, "contents"),
        State({"type": "hs-upload", "sec": MATCH, "key": MATCH}, "filename"),
        State("hs-token", "data"),
        prevent_initial_call=True,
    )
    def upload_file(contents, filename, token):
        if not contents:
            raise PreventUpdate
        many = isinstance(contents, list)
        contents = contents if many else [contents]
        names = filename if isinstance(filename, list) else [filename]
        stored = []
        for name, body in zip(names, contents):
            data = _decode_upload(body)
            entry: dict[str, Any] = {"value": name, "link": "", "size": len(data)}
            if save_upload is not None:
                try:
                    entry.update(save_upload(token, name, data))
                except HisciError as exc:
                    return no_update, f"{name}: {exc.message}"
            if len(data) < 256 * 1024:
                entry["text"] = data[:65536].decode("utf-8", errors="replace")
            stored.append(entry)
        if many:
            value = {"value": [s["value"] for s in stored], "link": [s["link"] for s in stored],
                     "size": [s["size"] for s in stored],
                     "text": stored[0].get("text", "") if stored else ""}
        else:
            value = stored[0]
        return value, W.describe_file(value)

    @app.callback(
        Output("hs-form-body", "children"),
        Input("hs-load-example", "n_clicks"),
        State("hs-form-ref", "data"),
        State("hs-lang", "data"),
        prevent_initial_call=True,
    )
    def load_example(n_clicks, ref, lang):
        plugin = resolve(ref)
        if not n_clicks or plugin is None or not plugin.params.examples:
            raise PreventUpdate
        return form_body(plugin, norm_lang(lang), example_values(plugin))
