"""Plugin preview and debug: edit meta/data/ui JSON, see every problem with its pointer,
the live form, the derived parameter schema, and run the example data locally."""

from __future__ import annotations

import atexit
import base64
import hashlib
import io
import json
import re
import shutil
import tempfile
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from hisci import HisciError, Plugin, Problem, load_plugin
from hisci.expressions import check_ui_expressions
from hisci.figures import load_figure
from hisci.models import DataSpec, Meta, UiSpec
from hisci.preview import example_inputs

from .. import forms
from ..i18n import norm_lang, t
from .catalogue import problem_list
from .plugin_form import hidden_sweep_panel

FILES = ("meta.json", "data.json", "ui.json")
WORKFLOW = "workflow.json"
EDITABLE = (*FILES, WORKFLOW)  # workflow.json only for workflow folders (empty otherwise)
LOG_LINES = 200
POLL_MS = 700


class PreviewCache:
    """Plugins built from pasted JSON, by a hash of the texts (bounded; thread safe).

    Each one lives in its own temporary folder, with the code of the plugin it started
    from (if any) so that "Run example" runs the edited JSON with the real entry point.
    """

    def __init__(self, size: int = 32, root: Path | None = None) -> None:
        self.size = size
        self._root: Path | None = None
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        if root is not None:  # the service's <data dir>/preview: emptied at every start
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True, mode=0o700)
            self._root = root

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="hisci-preview-"))
            atexit.register(shutil.rmtree, self._root, True)
        return self._root

    def close(self) -> None:
        """Remove every preview folder (the app is shutting down)."""
        self.clear()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    def build(self, texts: dict[str, str], base: Plugin | None) -> dict[str, Any]:
        """Load the texts as a plugin: ``{"key", "plugin", "problems", "folder"}``."""
        digest = hashlib.sha256(json.dumps([texts, base.id if base else None, str(base.folder) if base else ""],
                                           sort_keys=True).encode()).hexdigest()[:20]
        with self._lock:
            if digest in self._items:
                self._items.move_to_end(digest)
                return self._items[digest]
        entry = self._load(digest, texts, base)
        with self._lock:
            self._items[digest] = entry
            while len(self._items) > self.size:
                _, old = self._items.popitem(last=False)
                shutil.rmtree(old["folder"].parent, ignore_errors=True)
        return entry

    def clear(self) -> None:
        """Forget every built preview (the code they link to changed on disk)."""
        with self._lock:
            items, self._items = list(self._items.values()), OrderedDict()
        for entry in items:
            shutil.rmtree(entry["folder"].parent, ignore_errors=True)

    def plugin(self, key: str) -> Plugin | None:
        with self._lock:
            entry = self._items.get(key)
        return entry["plugin"] if entry else None

    def _load(self, key: str, texts: dict[str, str], base: Plugin | None) -> dict[str, Any]:
        plugin_id = base.id if base else _guess_id(texts)
        folder = self.root / key / plugin_id
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if base is not None:  # the base plugin's code and example files, linked (not copied)
            for item in base.folder.iterdir():
                if item.name not in EDITABLE and item.name != "__pycache__":
                    (folder / item.name).symlink_to(item.resolve(), target_is_directory=item.is_dir())
        for name in FILES:
            (folder / name).write_text(texts.get(name, ""), "utf-8")
        if (texts.get(WORKFLOW) or "").strip():
            (folder / WORKFLOW).write_text(texts[WORKFLOW], "utf-8")
        problems: list[Problem] = []
        plugin = None
        try:
            plugin = load_plugin(folder, "preview", package=base.package if base else None)
        except HisciError as exc:
            problems = list(exc.problems)
            plugin = _lenient(folder, plugin_id)
        problems += _expression_problems(folder, problems)
        return {"key": key, "plugin": plugin, "problems": problems, "folder": folder,
                "valid": not problems, "warnings": list(plugin.warnings) if plugin and not problems else []}


def _guess_id(texts: dict[str, str]) -> str:
    try:
        tool = json.loads(texts.get("data.json") or "{}").get("tool")
    except (ValueError, AttributeError):
        tool = None
    tool = re.sub(r"[^A-Za-z0-9_-]", "_", tool) if isinstance(tool, str) and tool else "preview"
    return tool


def _lenient(folder: Path, plugin_id: str) -> Plugin | None:
    """A Plugin for drawing the form even when validation failed (None if the JSON does
    not even parse into the models)."""
    try:
        raw = {name: json.loads((folder / name).read_text("utf-8")) for name in FILES}
        meta = Meta.model_validate(raw["meta.json"])
        data = DataSpec.model_validate(raw["data.json"])
        ui = UiSpec.from_json(raw["ui.json"])
        plugin = Plugin(plugin_id, folder, "preview", meta, data, ui, raw)
        _ = plugin.params  # derive the schema now: a failure here means no form
        return plugin
    except Exception:  # noqa: BLE001 - anything that fails leaves just the problems
        return None


def _expression_problems(folder: Path, known: list[Problem]) -> list[Problem]:
    try:
        ui = json.loads((folder / "ui.json").read_text("utf-8"))
    except ValueError:
        return []
    if not isinstance(ui, dict):
        return []
    seen = {(p.pointer, p.message) for p in known}
    return [p for p in check_ui_expressions(ui, file=str(folder / "ui.json"))
            if (p.pointer, p.message) not in seen]


def _texts_of(plugin: Plugin) -> dict[str, str]:
    return {name: (plugin.folder / name).read_text("utf-8") if (plugin.folder / name).exists() else ""
            for name in EDITABLE}


def workflow_problems(plugin: Plugin, registry: Any) -> list[Problem]:
    """The graph problems of a workflow folder against the app's registry (plus itself);
    steps naming plugins the app does not hold are looked up in a full discovery."""
    from hisci.workflow.graph import RegistryView, check

    return check(plugin, RegistryView(registry, {plugin.id: plugin}, fallback=_discovered))


def _discovered() -> Any:
    from hisci import Registry

    return Registry.discover()


def graph_panel(plugin: Plugin | None, problems: list[Problem], lang: str) -> Any:
    if plugin is None or not plugin.is_workflow:
        return html.Div("—", className="hs-muted")
    from hisci.workflow.figure import graph_figure, graph_of_workflow, problems_by_step

    marked = problems_by_step(problems)
    return html.Div([
        dcc.Graph(id="hs-pv-graphfig", figure=graph_figure(graph_of_workflow(plugin), problems=marked),
                  config={"displaylogo": False, "displayModeBar": False}),
        html.Ul([html.Li([html.Span(sid, className="hs-badge hs-badge-failed"), " ", "; ".join(msgs)])
                 for sid, msgs in marked.items()], id="hs-pv-graph-problems"),
    ])


def layout(env: Any, lang: str, plugin_id: str | None = None) -> Any:
    options = [{"label": f"{p.meta.title(lang) or p.id} ({p.id})", "value": p.id} for p in env.registry]
    base = env.registry.plugins.get(plugin_id or "")
    texts = _texts_of(base) if base else {name: "" for name in EDITABLE}
    editors = []
    for name in EDITABLE:
        editors.append(html.Div(className="hs-panel", children=[
            html.Label(name, className="hs-label", htmlFor=f"hs-pv-{name.split('.')[0]}"),
            dcc.Textarea(id=f"hs-pv-{name.split('.')[0]}", value=texts[name], className="hs-code",
                         spellCheck=False, style={"minHeight": "220px"}),
        ]))
    watching = getattr(env, "watch_folder", None) is not None
    if watching:
        from ..preview import folder_signature
    return html.Div([
        html.H1(t("preview.title", lang)),
        dcc.Store(id="hs-pv-base", data=base.id if base else None),
        dcc.Interval(id="hs-pv-watch", interval=700, disabled=not watching),
        dcc.Store(id="hs-pv-signature", data=folder_signature(env.watch_folder) if watching else None),
        html.Div(className="hs-filters", children=[
            html.Div([html.Label(t("preview.pick", lang), className="hs-label"),
                      dcc.Dropdown(id="hs-pv-pick", options=options, value=base.id if base else None,
                                   clearable=False)]),
            html.Div([html.Label(t("preview.upload", lang), className="hs-label"),
                      dcc.Upload(id="hs-pv-upload", multiple=True, accept=".json,.zip",
                                 className="hs-drop", children=html.Div("meta.json · data.json · ui.json · .zip"))]),
        ]),
        html.Div(className="hs-two", children=[
            html.Div(editors),
            html.Div([
                html.Div(className="hs-panel", children=[html.H3(t("preview.problems", lang)),
                                                         html.Div(id="hs-pv-problems")]),
                html.Div(className="hs-panel", children=[html.H3(t("preview.graph", lang)),
                                                         html.Div(id="hs-pv-graph")]),
                html.Div(className="hs-panel", children=[html.H3(t("preview.form", lang)),
                                                         html.Div(id="hs-pv-form")]),
                html.Div(className="hs-panel", children=[
                    html.Button(t("preview.run", lang), id="hs-pv-run", className="hs-btn hs-primary"),
                    dcc.Store(id="hs-pv-job", data=None),  # a service's preview job while it runs
                    dcc.Interval(id="hs-pv-poll", interval=POLL_MS, disabled=True),
                    dcc.Loading(html.Div(id="hs-pv-result"))]),
                html.Div(className="hs-panel", children=[
                    html.Details([html.Summary(t("preview.schema", lang)),
                                  html.Pre(id="hs-pv-schema", className="hs-json")])]),
            ]),
        ]),
    ])


def _from_upload(names: list[str], contents: list[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name, body in zip(names, contents):
        raw = base64.b64decode(body.split(",", 1)[1] if "," in body else body)
        if name.lower().endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                for member in archive.namelist():
                    base = member.rsplit("/", 1)[-1]
                    if base in EDITABLE and base not in texts:
                        texts[base] = archive.read(member).decode("utf-8", errors="replace")
        elif name.rsplit("/", 1)[-1] in EDITABLE:
            texts[name.rsplit("/", 1)[-1]] = raw.decode("utf-8", errors="replace")
    return texts


def run_example(plugin: Plugin, root: Path, lang: str) -> Any:
    """Run exampleData (a plugin's or a workflow's) in a child process (preview_runner: timeout,
    memory cap) in a fresh folder under ``root``; the folder is removed once the result is drawn."""
    from ..preview_runner import run_isolated

    output = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    try:
        try:
            inputs = example_inputs(plugin)
        except HisciError as exc:
            return html.Div([html.Div(t("preview.cannot_run", lang, why=exc.message), className="hs-problem"),
                             problem_list(exc.problems)])
        result = run_isolated(plugin.folder, plugin.package, inputs, output)
        if result["status"] == "refused":
            return html.Div([html.Div(t("preview.cannot_run", lang, why=result["error"]), className="hs-problem"),
                             html.Ul([html.Li(p) for p in result.get("problems") or []])])
        return _run_parts(result, output, lang)
    finally:
        shutil.rmtree(output, ignore_errors=True)


def _run_parts(result: dict[str, Any], output: Path, lang: str) -> list[Any]:
    status = result["status"]
    parts: list[Any] = [html.Div([html.Span(status, className=f"hs-badge hs-badge-{status}",
                                            **{"data-status": status}),
                                  f" {result['error']}" if result.get("error") else ""], id="hs-pv-status")]
    for name in result.get("figures") or []:
        path = output / name
        if path.exists():
            parts.append(dcc.Graph(figure=load_figure(path), config={"displaylogo": False},
                                   className="hs-pv-graph"))
    log_path = output / "log.txt"
    log_text = log_path.read_text("utf-8", errors="replace") if log_path.exists() else ""
    parts.append(html.H4(t("job.log", lang)))
    parts.append(html.Pre("\n".join(log_text.splitlines()[-LOG_LINES:]), className="hs-log"))
    parts.append(html.H4("result.json"))
    parts.append(html.Pre(json.dumps(result.get("summary") or {}, indent=2, ensure_ascii=False, default=str),
                          className="hs-json", id="hs-pv-result-json"))
    return parts


def register(app: Any, env: Any) -> None:
    @app.callback(
        Output("hs-pv-meta", "value"),
        Output("hs-pv-data", "value"),
        Output("hs-pv-ui", "value"),
        Output("hs-pv-workflow", "value"),
        Output("hs-pv-base", "data"),
        Input("hs-pv-pick", "value"),
        Input("hs-pv-upload", "contents"),
        State("hs-pv-upload", "filename"),
        State("hs-pv-base", "data"),
        prevent_initial_call=True,
    )
    def load(picked, contents, filenames, base):
        trigger = ctx.triggered_id
        if trigger == "hs-pv-pick":
            plugin = env.registry.plugins.get(picked or "")
            if plugin is None or picked == base:
                raise PreventUpdate
            texts = _texts_of(plugin)
            return texts["meta.json"], texts["data.json"], texts["ui.json"], texts[WORKFLOW], plugin.id
        if trigger == "hs-pv-upload" and contents:
            texts = _from_upload(filenames or [], contents)
            if not texts:
                raise PreventUpdate
            return (texts.get("meta.json", no_update), texts.get("data.json", no_update),
                    texts.get("ui.json", no_update), texts.get(WORKFLOW, no_update), no_update)
        raise PreventUpdate

    @app.callback(
        Output("hs-pv-meta", "value", allow_duplicate=True),
        Output("hs-pv-data", "value", allow_duplicate=True),
        Output("hs-pv-ui", "value", allow_duplicate=True),
        Output("hs-pv-workflow", "value", allow_duplicate=True),
        Output("hs-pv-signature", "data"),
        Input("hs-pv-watch", "n_intervals"),
        State("hs-pv-signature", "data"),
        prevent_initial_call=True,
    )
    def watch(_, signature):
        """`hicli preview`: push the folder's files into the editors when they change."""
        from ..preview import folder_signature, forget_modules, watched_texts

        folder = getattr(env, "watch_folder", None)
        if folder is None:
            raise PreventUpdate
        now = folder_signature(folder)
        if now == signature:
            raise PreventUpdate
        base = env.registry.plugins.get(folder.name)
        forget_modules(folder.name, base.package if base else None)
        env.previews.clear()
        texts = watched_texts(folder)
        return texts["meta.json"], texts["data.json"], texts["ui.json"], texts.get(WORKFLOW, ""), now

    @app.callback(
        Output("hs-pv-problems", "children"),
        Output("hs-pv-form", "children"),
        Output("hs-pv-schema", "children"),
        Output("hs-pv-graph", "children"),
        Input("hs-pv-meta", "value"),
        Input("hs-pv-data", "value"),
        Input("hs-pv-ui", "value"),
        Input("hs-pv-workflow", "value"),
        State("hs-pv-base", "data"),
        State("hs-lang", "data"),
        State("hs-token", "data"),
    )
    def check(meta, data, ui, workflow, base_id, lang, token):
        lang = norm_lang(lang)
        if env.service is not None and env.user(token) is None:  # it writes files: log in first
            return html.Div(t("login.needed", lang), className="hs-problem"), None, "", None
        texts = {"meta.json": meta or "", "data.json": data or "", "ui.json": ui or "", WORKFLOW: workflow or ""}
        if not any(v.strip() for v in texts.values()):
            return html.Div("—", className="hs-muted"), None, "", None
        base = env.registry.plugins.get(base_id or "")
        entry = env.previews.build(texts, base)
        problems = list(entry["problems"])
        if entry["plugin"] is not None and entry["plugin"].is_workflow and not problems:
            problems = workflow_problems(entry["plugin"], env.registry)
        graph = graph_panel(entry["plugin"], problems, lang)
        summary = (problem_list(problems) if problems
                   else html.Div(t("preview.no_problems", lang), className="hs-badge hs-badge-succeeded",
                                 id="hs-pv-valid"))
        if entry["warnings"]:
            summary = html.Div([summary, html.H4(t("preview.warnings", lang)), problem_list(entry["warnings"])],
                               id="hs-pv-warnings")
        plugin = entry["plugin"]
        if plugin is None:
            return summary, html.Div("—", className="hs-muted"), "", graph
        try:
            form = html.Div([forms.build_form(plugin, lang, ref={"preview": entry["key"]}, actions=False),
                             hidden_sweep_panel()])
            schema = json.dumps(plugin.parameter_schema(), indent=2, ensure_ascii=False)
        except Exception as exc:  # noqa: BLE001 - a form that cannot be drawn says why
            return summary, html.Div(f"cannot draw the form: {exc}", className="hs-problem"), "", graph
        return summary, form, schema, graph

    @app.callback(
        Output("hs-pv-result", "children"),
        Output("hs-pv-job", "data"),
        Output("hs-pv-poll", "disabled"),
        Input("hs-pv-run", "n_clicks"),
        State("hs-pv-meta", "value"),
        State("hs-pv-data", "value"),
        State("hs-pv-ui", "value"),
        State("hs-pv-workflow", "value"),
        State("hs-pv-base", "data"),
        State("hs-lang", "data"),
        State("hs-token", "data"),
        State("hs-pv-job", "data"),
        prevent_initial_call=True,
    )
    def run(n_clicks, meta, data, ui, workflow, base_id, lang, token, previous):
        """Locally (``hicli preview``) a child process with a timeout; with a service, a
        preview job on a worker (hisci.jobs.preview) that the page then polls."""
        if not n_clicks:
            raise PreventUpdate
        lang = norm_lang(lang)
        user = env.user(token)
        if env.service is not None and user is None:
            return html.Div(t("login.needed", lang), className="hs-problem"), None, True
        if env.service is not None:  # the job layer (redis, rq) only exists with a service
            from hisci.jobs.preview import close_preview, submit_preview

            if previous:
                close_preview(env.service, user, previous)
        texts = {"meta.json": meta or "", "data.json": data or "", "ui.json": ui or "", WORKFLOW: workflow or ""}
        entry = env.previews.build(texts, env.registry.plugins.get(base_id or ""))
        if entry["plugin"] is not None and entry["plugin"].is_workflow and not entry["problems"]:
            entry = dict(entry, problems=workflow_problems(entry["plugin"], env.registry))
        if entry["problems"] or entry["plugin"] is None:
            return html.Div(t("preview.cannot_run", lang, why=f"{len(entry['problems'])} problem(s)"),
                            className="hs-problem"), None, True
        if env.service is None:
            return run_example(entry["plugin"], entry["folder"].parent, lang), None, True
        try:
            record = submit_preview(env.service, user, entry["folder"], env.registry.plugins.get(base_id or ""))
        except HisciError as exc:
            return html.Div([html.Div(t("preview.cannot_run", lang, why=exc.message), className="hs-problem"),
                             problem_list(exc.problems)]), None, True
        return _pending(record), record["id"], False

    @app.callback(
        Output("hs-pv-result", "children", allow_duplicate=True),
        Output("hs-pv-job", "data", allow_duplicate=True),
        Output("hs-pv-poll", "disabled", allow_duplicate=True),
        Input("hs-pv-poll", "n_intervals"),
        State("hs-pv-job", "data"),
        State("hs-lang", "data"),
        State("hs-token", "data"),
        prevent_initial_call=True,
    )
    def poll(_, job_id, lang, token):
        """Show the preview job's state; once it ended, draw its result and remove the job."""
        from hisci.jobs.preview import close_preview
        from hisci.jobs.record import JobState

        user = env.user(token)
        if env.service is None or user is None or not job_id:
            return no_update, None, True
        try:
            record = env.service.get(user, job_id)
        except HisciError as exc:  # deleted meanwhile (another tab, a restart)
            return html.Div(exc.message, className="hs-problem"), None, True
        if not JobState(record["status"]).finished:
            return _pending(record), no_update, False
        parts = job_result(env.service, user, record, norm_lang(lang))
        close_preview(env.service, user, job_id)
        return parts, None, True

    @app.server.route(f"{app.config.routes_pathname_prefix}_hisci/preview-close", methods=["POST"])
    def preview_close():
        """The page went away (tab closed, reload, another page): its running preview job
        goes too. Body ``{"token", "job"}`` (sent by navigator.sendBeacon, which sets no
        headers; the token in the body stands for the bearer header)."""
        from flask import request as flask_request

        body = flask_request.get_json(force=True, silent=True) or {}
        user = env.user(body.get("token"))
        if env.service is not None and user is not None and isinstance(body.get("job"), str):
            from hisci.jobs.preview import close_preview

            close_preview(env.service, user, body["job"])
        return "", 204

    app.clientside_callback(  # remember the page's running preview job (and close it on pagehide)
        REMEMBER_JS,
        Output("hs-pv-closed", "data"),
        Input("hs-pv-job", "data"),
        State("hs-token", "data"),
        State("url", "pathname"),
    )
    app.clientside_callback(  # another page of the app: close it
        LEAVE_JS,
        Output("hs-pv-closed", "data", allow_duplicate=True),
        Input("url", "pathname"),
        prevent_initial_call=True,
    )


#: The page's running preview job goes to ``_hisci/preview-close`` when the page is left
#: (another page of the app, or the tab closed / reloaded).
REMEMBER_JS = r"""
function(job, token, pathname) {
    if (!window.hisciPreviewClose) {
        window.hisciPreviewClose = function() {
            var open = window.hisciPreviewJob;
            if (open && open.job) {
                navigator.sendBeacon(open.url, new Blob([JSON.stringify({token: open.token, job: open.job})],
                                                        {type: "application/json"}));
            }
            window.hisciPreviewJob = null;
        };
        window.addEventListener("pagehide", window.hisciPreviewClose);
    }
    var url = (pathname || "/").split("/preview")[0].replace(/\/$/, "") + "/_hisci/preview-close";
    window.hisciPreviewJob = job ? {job: job, token: token, url: url} : null;
    return window.dash_clientside.no_update;
}
"""
LEAVE_JS = r"""
function(pathname) {
    if (window.hisciPreviewClose && !(pathname || "").match(/\/preview\/?$/)) {
        window.hisciPreviewClose();
    }
    return window.dash_clientside.no_update;
}
"""


def _pending(record: dict[str, Any]) -> Any:
    status = record["status"]
    return html.Div([html.Span(status, className=f"hs-badge hs-badge-{status}", **{"data-status": status}),
                     f" {record.get('message') or ''} {round(100 * float(record.get('progress') or 0))}%"],
                    id="hs-pv-status")


def job_result(service: Any, user: Any, record: dict[str, Any], lang: str) -> list[Any]:
    """The parts of a finished preview job, drawn from its job folder."""
    folder = service.store.folder(record["id"])
    summary_path = folder / "result.json"
    summary = json.loads(summary_path.read_text("utf-8")) if summary_path.is_file() else {}
    result = {"status": record["status"], "error": record.get("reason"), "summary": summary,
              "figures": record.get("figures") or []}
    return _run_parts(result, folder, lang)
