"""Plugin page: the card, the form drawn from ui.json, and submit (through the job service)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from hisci import HisciError

from .. import forms
from ..i18n import t
from .catalogue import problem_list


def layout(env: Any, plugin_id: str, lang: str, user: Any, query: dict[str, str]) -> Any:
    plugin = env.registry.plugins.get(plugin_id)
    if plugin is None:
        rejected = next((r for r in env.registry.problems if r.id == plugin_id), None)
        if rejected is not None:
            return html.Div(className="hs-panel", children=[
                html.H2([plugin_id, " ", html.Span(t("cat.invalid", lang), className="hs-badge hs-badge-invalid")]),
                html.P(t("plugin.invalid", lang)),
                problem_list(rejected.problems),
            ])
        return html.Div(html.H2(t("plugin.not_found", lang, id=plugin_id)), className="hs-panel")
    values = None
    note = None
    if query.get("job") and env.service is not None and user is not None:
        try:
            record = env.service.get(user, query["job"])
            values = plugin.params.fill_defaults(rerun_request(env, plugin, record.get("params") or {}))
        except HisciError:
            note = html.Div(t("job.not_found", lang), className="hs-note")
    info = plugin.meta.card(lang)
    header = html.Div(className="hs-panel", children=[
        html.H1(info["name"] or plugin.id),
        html.P(info["intro"]),
        html.Div([html.Span(tag, className="hs-tag") for tag in info["tags"]]),
        html.Div(" · ".join(x for x in (plugin.id, info["version"] and ("" if str(info["version"]).startswith("v") else "v") + str(info["version"]),
                                        info["author"]) if x), className="hs-muted"),
        html.Details([html.Summary(t("cat.citation", lang)), dcc.Markdown(info["citation"])])
        if info["citation"] else None,
    ])
    login_note = None
    if env.service is not None and user is None:
        login_note = html.Div([t("login.needed_submit", lang), " ",
                               dcc.Link(t("nav.login", lang), href=env.href("/login"))], className="hs-note")
    elif env.service is None:
        login_note = html.Div(t("service.missing", lang), className="hs-note")
    return html.Div([
        header, note, login_note,
        forms.build_form(plugin, lang, values=values),
        sweep_panel(plugin, lang),
    ])


SWEEP_TYPES = ("slider", "select", "autocomplete", "text-field")


def sweep_panel(plugin: Any, lang: str) -> Any:
    """The "sweep" toggle: one numeric or select field takes a list or a range of values and
    the submit makes one job per value (a sweep group with a comparison page)."""
    from hisci.models.meta import localize

    fields = [{"label": localize(w.label, lang) or key, "value": key} for key, w in plugin.ui.extra.items()
              if w.type in SWEEP_TYPES and not w.multiple]
    if not fields:
        return hidden_sweep_panel()
    return html.Div(id="hs-sweep", className="hs-panel", children=[
        dcc.Checklist(id="hs-sweep-on", options=[{"label": " " + t("form.sweep", lang), "value": "on"}], value=[]),
        html.Div([html.Label(t("form.sweep_field", lang)),
                  dcc.Dropdown(id="hs-sweep-field", options=fields, value=fields[0]["value"], clearable=False)]),
        html.Div([html.Label(t("form.sweep_values", lang)),
                  dcc.Input(id="hs-sweep-values", type="text", debounce=False, placeholder="0.2,0.5,0.8",
                            className="hs-input")]),
    ])


def hidden_sweep_panel() -> Any:
    """The sweep controls, hidden: every page that draws a form with ``hs-submit`` (the
    preview page too) needs them, since the submit callback reads their state."""
    return html.Div(id="hs-sweep", hidden=True, children=[
        dcc.Checklist(id="hs-sweep-on", value=[]), dcc.Dropdown(id="hs-sweep-field"),
        dcc.Input(id="hs-sweep-values")])


def _relink(env: Any, plugin: Any, link: Any) -> Any:
    """A stored input path as the link a new request may carry: ``upload:<id>`` for an
    upload (``<data dir>/uploads/<id>/<name>``), a relative path for a plugin's example file."""
    if not isinstance(link, str) or not link:
        return link
    path = Path(link)
    if not path.is_absolute():
        return link
    try:
        uploads = (Path(env.settings.data_dir) / "uploads").resolve()
        resolved = path.resolve()
        if resolved.parent.parent == uploads:
            return f"upload:{resolved.parent.name}"
        folder = plugin.folder.resolve()
        if resolved.is_relative_to(folder):
            return str(resolved.relative_to(folder))
    except OSError:
        pass
    return link


def rerun_request(env: Any, plugin: Any, params: dict[str, Any]) -> dict[str, Any]:
    """A job's params as a request for "Run again" (input links made submittable again)."""
    params = copy.deepcopy(params)
    for entry in (params.get("data") or {}).values():
        if isinstance(entry, dict) and entry.get("link"):
            link = entry["link"]
            entry["link"] = [_relink(env, plugin, x) for x in link] if isinstance(link, list) \
                else _relink(env, plugin, link)
    return params


def register(app: Any, env: Any) -> None:
    @app.callback(
        Output("url", "pathname", allow_duplicate=True),
        Output("hs-submit-msg", "children"),
        Input("hs-submit", "n_clicks"),
        State("hs-request", "data"),
        State("hs-form-ref", "data"),
        State("hs-token", "data"),
        State("hs-lang", "data"),
        State("hs-sweep-on", "value"),
        State("hs-sweep-field", "value"),
        State("hs-sweep-values", "value"),
        prevent_initial_call=True,
    )
    def submit(n_clicks, request, ref, token, lang, sweep_on, sweep_field, sweep_values):
        if not n_clicks or not isinstance(ref, dict) or not ref.get("id"):
            raise PreventUpdate
        if env.service is None:
            return no_update, t("service.missing", lang or "en")
        user = env.user(token)
        if user is None:
            return no_update, t("login.needed_submit", lang or "en")
        try:
            sweep = ({f"extra.{sweep_field}": sweep_values.strip()}
                     if sweep_on and sweep_field and (sweep_values or "").strip() else None)
            record = env.service.submit(user, ref["id"], request or {}, sweep=sweep)
        except HisciError as exc:
            return no_update, html.Ul([html.Li(str(p)) for p in exc.problems])
        return env.href(f"/jobs/{record['id']}"), ""

