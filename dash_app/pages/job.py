"""Job page: live status, progress, log tail, figures, output files, params, "Run again"."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from hisci import HisciError
from hisci.figures import decode_arrays
from hisci.jobs.record import FINISHED

from .. import live_view
from ..i18n import norm_lang, t
from ..widgets import human_size

TERMINAL = tuple(s.value for s in FINISHED)
LOG_LINES = 200
LOG_TAIL_CHARS = 24 * 1024
POLL_MS = 1000


def not_found(lang: str) -> Any:
    return html.Div(html.H2(t("job.not_found", lang), id="hs-job-not-found"), className="hs-panel")


def layout(env: Any, job_id: str, lang: str, user: Any) -> Any:
    if env.service is None:
        return html.Div(t("service.missing", lang), className="hs-panel")
    if user is None:
        return html.Div([t("login.needed", lang), " ",
                         dcc.Link(t("nav.login", lang), href=env.href("/login"))], className="hs-panel")
    try:
        record = env.service.get(user, job_id)
    except HisciError:
        return not_found(lang)
    return html.Div([
        dcc.Store(id="hs-job-id", data=job_id),
        dcc.Store(id="hs-job-logstate", data={"offset": 0, "tail": ""}),
        dcc.Interval(id="hs-job-tick", interval=POLL_MS, disabled=False),
        html.Div(className="hs-panel", children=[
            html.H2(t("job.title", lang, id=job_id)),
            html.Div(id="hs-job-head", children=head(env, record, lang)),
            html.Div(className="hs-progress", children=html.Div(id="hs-job-bar", className="hs-progress-bar",
                                                              style={"width": "0%"})),
            html.Div(id="hs-job-message", className="hs-muted"),
            html.Div(className="hs-actions", children=[
                html.Button(t("job.cancel", lang), id="hs-job-cancel", className="hs-btn"),
                dcc.Link(t("job.run_again", lang), id="hs-job-again", className="hs-btn",
                         href=env.href(f"/plugins/{plugin_id(record)}?job={job_id}")),
            ]),
        ]),
        live_view.panel(record) if record.get("live_spec") else None,
        html.Div(id="hs-job-steps", children=steps_panel(env, user, record, lang)),
        html.Div(className="hs-panel", children=[html.H3(t("job.figures", lang)),
                                                 html.Div(id="hs-job-figures")]),
        html.Div(className="hs-panel", children=[html.H3(t("job.files", lang)),
                                                 html.Div(id="hs-job-files")]),
        html.Div(className="hs-panel", children=[html.H3(t("job.log", lang)),
                                                 html.Pre(id="hs-job-log", className="hs-log")]),
        html.Div(className="hs-panel", children=[
            html.H3(t("job.params", lang)),
            html.Pre(json.dumps(record.get("params") or {}, indent=2, ensure_ascii=False),
                     className="hs-json", id="hs-job-params")]),
    ])


def plugin_id(record: dict[str, Any]) -> str:
    plugin = record.get("plugin")
    return plugin.get("id", "") if isinstance(plugin, dict) else str(plugin or "")


def when(value: Any) -> str:
    """An ISO time as ``2026-11-25 16:54:48`` (UTC, as recorded)."""
    text = str(value or "")
    return text[:19].replace("T", " ") if len(text) >= 19 and text[10] == "T" else text


def badge(status: str, lang: str) -> Any:
    return html.Span(t(f"status.{status}", lang) if status else "?",
                     className=f"hs-badge hs-badge-{status}", **{"data-status": status})


def head(env: Any, record: dict[str, Any], lang: str) -> Any:
    status = record.get("status", "")
    rows = [
        html.Div([t("job.status", lang), ": ", badge(status, lang)], id="hs-job-status"),
        html.Div([t("job.plugin", lang), ": ",
                  dcc.Link(plugin_id(record), href=env.href(f"/plugins/{plugin_id(record)}")),
                  f" {(record.get('plugin') or {}).get('version', '')}" if isinstance(record.get("plugin"), dict) else ""]),
        html.Div(" · ".join(f"{t(k, lang)}: {when(record.get(f))}" for k, f in (
            ("job.created", "created"), ("job.started", "started"), ("job.finished", "finished"))
            if record.get(f)), className="hs-muted"),
    ]
    if record.get("reason"):
        rows.append(html.Div(f"{t('job.reason', lang)}: {record['reason']}", className="hs-error"))
    if record.get("kind") == "sweep":
        rows.append(dcc.Link(t("job.compare", lang), id="hs-job-compare", className="hs-btn",
                             href=env.href(f"/jobs/{record['id']}/compare")))
    return rows


def steps_panel(env: Any, user: Any, record: dict[str, Any], lang: str) -> Any:
    """A workflow job: its step graph coloured by state, and a link to each step's job page."""
    graph = record.get("graph")
    if record.get("kind") != "workflow" or not isinstance(graph, dict):
        return None
    from hisci.workflow.figure import graph_figure

    children = {c.get("name"): c for c in record.get("children") or []}
    states = {sid: (children[sid].get("status") if sid in children else "skipped") for sid in graph}
    links = {sid: env.href(f"/jobs/{children[sid]['id']}") for sid in graph if sid in children}
    items = []
    for sid, node in graph.items():
        child = children.get(sid)
        name = f"{sid} ({node.get('plugin', '')})"
        target = dcc.Link(name, href=links[sid], id={"type": "hs-job-step", "step": sid}) if child else html.Span(name)
        extra = []
        if child and child.get("cached_from"):
            extra.append(html.Span(" cached", className="hs-muted"))
        if child and child.get("reason"):
            extra.append(html.Span(f" {child['reason']}", className="hs-muted"))
        items.append(html.Li([badge(states[sid], lang), " ", target, *extra]))
    return html.Div(className="hs-panel", children=[
        html.H3(t("job.steps", lang)),
        dcc.Graph(id="hs-job-stepgraph", figure=graph_figure(graph, states, links=links),
                  config={"displaylogo": False, "displayModeBar": False}),
        html.Ul(items, className="hs-steps", id="hs-job-steplist"),
        html.H4(t("job.workflow_outputs", lang)),
        html.Ul(workflow_outputs(env, user, record, children), id="hs-job-wfoutputs"),
    ])


def workflow_outputs(env: Any, user: Any, record: dict[str, Any], children: dict[str, Any]) -> list[Any]:
    """The workflow's named outputs, each a download link into the step that wrote it."""
    import fnmatch

    items = []
    for name, src in (record.get("workflow_outputs") or {}).items():
        child = children.get(src.get("step"))
        if child is None or child.get("status") != "succeeded" or env.service is None:
            items.append(html.Li(f"{name}: —"))
            continue
        try:
            plugin = env.registry.get(child.get("plugin") or "")
            pattern = plugin.outputs[src["output"]].glob
            files = [f["path"] for f in env.service.files(user, child["id"])
                     if fnmatch.fnmatch(f.get("path", ""), pattern)]
        except (HisciError, KeyError):
            files = []
        links = [html.A(path, href=env.api(f"jobs/{child['id']}/files/{quote(path)}"),
                        download=path.rsplit("/", 1)[-1]) for path in files]
        items.append(html.Li([f"{name}: ", *links] if links else f"{name}: —"))
    return items


def files_table(env: Any, job_id: str, files: list[dict[str, Any]], lang: str) -> Any:
    if not files:
        return html.Div("—", className="hs-muted")
    rows = [html.Tr([html.Th(t("job.file", lang)), html.Th(t("job.size", lang))])]
    for item in files:
        path = item.get("path", "")
        rows.append(html.Tr([
            html.Td(html.A(path, href=env.api(f"jobs/{job_id}/files/{quote(path)}"), download=path.rsplit("/", 1)[-1])),
            html.Td(human_size(item.get("size"))),
        ]))
    return html.Div([
        html.Table(rows, className="hs-tablelist"),
        html.P(html.A(t("job.zip", lang), href=env.api(f"jobs/{job_id}/zip"), id="hs-job-zip",
                      className="hs-btn-small")),
    ])


def figures(env: Any, user: Any, job_id: str, record: dict[str, Any]) -> list[Any]:
    out = []
    for name in record.get("figures") or []:
        try:
            figure = decode_arrays(env.service.figure(user, job_id, name))
        except HisciError as exc:
            out.append(html.Div(f"{name}: {exc.message}", className="hs-problem"))
            continue
        out.append(html.Div([html.Div(name, className="hs-muted"),
                             dcc.Graph(figure=figure, id={"type": "hs-job-graph", "name": name},
                                       config={"displaylogo": False})]))
    return out


def register(app: Any, env: Any) -> None:
    @app.callback(
        Output("hs-job-head", "children"),
        Output("hs-job-bar", "style"),
        Output("hs-job-message", "children"),
        Output("hs-job-log", "children"),
        Output("hs-job-figures", "children"),
        Output("hs-job-files", "children"),
        Output("hs-job-tick", "disabled"),
        Output("hs-job-cancel", "style"),
        Output("hs-job-logstate", "data"),
        Output("hs-job-steps", "children"),
        Input("hs-job-tick", "n_intervals"),
        State("hs-job-id", "data"),
        State("hs-job-logstate", "data"),
        State("hs-token", "data"),
        State("hs-lang", "data"),
    )
    def poll(_n, job_id, logstate, token, lang):
        lang = norm_lang(lang)
        user = env.user(token)
        if env.service is None or user is None or not job_id:
            raise PreventUpdate
        try:
            record = env.service.get(user, job_id)
            state = logstate if isinstance(logstate, dict) else {"offset": 0, "tail": ""}
            text, offset = env.service.log(user, job_id, int(state.get("offset") or 0))
        except HisciError:
            return not_found(lang), no_update, "", "", [], [], True, {"display": "none"}, no_update, None
        tail = (state.get("tail", "") + (text or ""))[-LOG_TAIL_CHARS:]
        status = record.get("status", "")
        done = status in TERMINAL
        progress = float(record.get("progress") or 0)
        if status == "succeeded":
            progress = 1.0
        lines = tail.splitlines()[-LOG_LINES:]
        figs = figures(env, user, job_id, record) if done else no_update
        try:
            files = files_table(env, job_id, env.service.files(user, job_id), lang) if done else no_update
        except HisciError:
            files = []
        return (head(env, record, lang), {"width": f"{progress * 100:.0f}%"},
                record.get("message") or "", "\n".join(lines), figs, files, done,
                {"display": "none"} if done else {}, {"offset": offset, "tail": tail},
                steps_panel(env, user, record, lang))

    @app.callback(
        Output("url", "pathname", allow_duplicate=True),
        Input("hs-job-stepgraph", "clickData"),
        prevent_initial_call=True,
    )
    def open_step(click):
        """A click on a step of the graph opens that step's job page."""
        points = (click or {}).get("points") or []
        target = points[0].get("customdata") if points else None
        if not target:
            raise PreventUpdate
        return target

    @app.callback(
        Output("hs-live-main", "figure"),
        Output("hs-live-side", "figure"),
        Output("hs-live-lag", "children"),
        Output("hs-live-state", "data"),
        Input("hs-job-tick", "n_intervals"),
        State("hs-job-id", "data"),
        State("hs-live-state", "data"),
        State("hs-token", "data"),
    )
    def live(_n, job_id, state, token):
        """Only the events after the last one seen; the graphs get Patch updates."""
        user = env.user(token)
        if env.service is None or user is None or not job_id:
            raise PreventUpdate
        state = state if isinstance(state, dict) else {"after": 0}
        try:
            new = env.service.live_events(user, job_id, int(state.get("after") or 0), 500)["events"]
        except HisciError:
            raise PreventUpdate from None
        if not new:
            raise PreventUpdate
        main, side, lag, state = live_view.apply(new, state)
        return (no_update if main is None else main, no_update if side is None else side,
                no_update if lag is None else lag, state)

    @app.callback(
        Output("hs-job-tick", "disabled", allow_duplicate=True),
        Input("hs-job-cancel", "n_clicks"),
        State("hs-job-id", "data"),
        State("hs-token", "data"),
        prevent_initial_call=True,
    )
    def cancel(n_clicks, job_id, token):
        user = env.user(token)
        if not n_clicks or user is None:
            raise PreventUpdate
        try:
            env.service.cancel(user, job_id)
        except HisciError:
            pass
        return False
