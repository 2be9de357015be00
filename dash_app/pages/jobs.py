"""My jobs: the user's jobs with status, plugin and times; cancel and retry from here."""

from __future__ import annotations

from typing import Any

from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from hisci import HisciError

from ..i18n import norm_lang, t
from .job import TERMINAL, badge, plugin_id, when

REFRESH_MS = 3000


def layout(env: Any, lang: str, user: Any) -> Any:
    if env.service is None:
        return html.Div(t("service.missing", lang), className="hs-panel")
    if user is None:
        return html.Div([t("login.needed", lang), " ",
                         dcc.Link(t("nav.login", lang), href=env.href("/login"))], className="hs-panel")
    return html.Div([
        html.H1(t("jobs.title", lang)),
        dcc.Interval(id="hs-jobs-tick", interval=REFRESH_MS),
        html.Div(id="hs-jobs-msg", className="hs-error"),
        html.Div(id="hs-jobs-table", children=table(env, user, lang)),
    ])


def table(env: Any, user: Any, lang: str) -> Any:
    records, more = env.service.list_jobs(user, limit=100)
    if not records:
        return html.Div(t("jobs.none", lang), className="hs-muted")
    head = html.Tr([html.Th(x) for x in ("ID", t("job.plugin", lang), t("job.status", lang),
                                         t("job.created", lang), t("job.finished", lang),
                                         t("job.actions", lang))])
    rows = [head]
    for record in records:
        job_id = record["id"]
        status = record.get("status", "")
        actions = []
        if status not in TERMINAL:
            actions.append(html.Button(t("job.cancel", lang), className="hs-btn-small",
                                       id={"type": "hs-jobs-cancel", "job": job_id}))
        else:
            actions.append(html.Button(t("job.retry", lang), className="hs-btn-small",
                                       id={"type": "hs-jobs-retry", "job": job_id}))
        rows.append(html.Tr([
            html.Td(dcc.Link(job_id, href=env.href(f"/jobs/{job_id}"))),
            html.Td(plugin_id(record)),
            html.Td(badge(status, lang)),
            html.Td(when(record.get("created"))),
            html.Td(when(record.get("finished"))),
            html.Td(actions),
        ], **{"data-job": job_id}))
    return html.Div([html.Table(rows, className="hs-tablelist"),
                     html.Div(f"{len(records)}{'+' if more else ''}", className="hs-muted")])


def register(app: Any, env: Any) -> None:
    @app.callback(
        Output("hs-jobs-table", "children"),
        Output("hs-jobs-msg", "children"),
        Input("hs-jobs-tick", "n_intervals"),
        Input({"type": "hs-jobs-cancel", "job": ALL}, "n_clicks"),
        Input({"type": "hs-jobs-retry", "job": ALL}, "n_clicks"),
        State("hs-token", "data"),
        State("hs-lang", "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick, _cancels, _retries, token, lang):
        lang = norm_lang(lang)
        user = env.user(token)
        if env.service is None or user is None:
            raise PreventUpdate
        message = ""
        trigger = ctx.triggered_id
        clicked = ctx.triggered[0].get("value") if ctx.triggered else None
        if isinstance(trigger, dict) and clicked:
            try:
                if trigger["type"] == "hs-jobs-cancel":
                    env.service.cancel(user, trigger["job"])
                else:
                    env.service.retry(user, trigger["job"])
            except HisciError as exc:
                message = exc.message
        return table(env, user, lang), message
