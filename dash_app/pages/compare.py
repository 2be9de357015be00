"""Sweep comparison page: the chosen figure of every child side by side, each with its
value, and a table of the children's summary numbers (``/jobs/<sweep id>/compare``)."""

from __future__ import annotations

import json
from typing import Any

from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from hisci import HisciError
from hisci.figures import decode_arrays

from ..i18n import t
from .job import badge, not_found


def sweep_children(env: Any, user: Any, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The sweep's children in the order of its values, each with its full record."""
    values = (record.get("sweep") or {}).get("values") or []
    rank = {json.dumps(v): i for i, v in enumerate(values)}
    kids = [env.service.get(user, c["id"]) for c in record.get("children") or []]
    return sorted(kids, key=lambda c: rank.get(json.dumps(c.get("sweep_value")), len(rank)))


def summary_numbers(env: Any, child: dict[str, Any]) -> dict[str, float]:
    """The numbers (ints and floats, not booleans) at the top level of a child's result.json."""
    path = env.service.store.folder(child["id"]) / "result.json"
    try:
        result = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def layout(env: Any, job_id: str, lang: str, user: Any) -> Any:
    if env.service is None or user is None:
        return html.Div(t("login.needed", lang), className="hs-panel")
    try:
        record = env.service.get(user, job_id)
    except HisciError:
        return not_found(lang)
    if record.get("kind") != "sweep":
        return html.Div(t("compare.not_sweep", lang), className="hs-panel", id="hs-compare-not-sweep")
    kids = sweep_children(env, user, record)
    names: list[str] = []
    for child in kids:
        names += [n for n in child.get("figures") or [] if n not in names]
    key = (record.get("sweep") or {}).get("key", "")
    rows = [summary_numbers(env, c) for c in kids]
    columns = sorted({k for r in rows for k in r})
    table = html.Table(id="hs-compare-table", className="hs-tablelist", children=[
        html.Tr([html.Th(key), html.Th(t("job.status", lang))] + [html.Th(c) for c in columns]),
        *[html.Tr([html.Td(json.dumps(c.get("sweep_value"))), html.Td(badge(c.get("status", ""), lang))]
                  + [html.Td(f"{r[col]:.6g}" if col in r else "—") for col in columns])
          for c, r in zip(kids, rows, strict=True)],
    ])
    return html.Div([
        dcc.Store(id="hs-compare-id", data=job_id),
        html.Div(className="hs-panel", children=[
            html.H2(t("compare.title", lang, param=key)),
            dcc.Link(t("compare.back", lang), href=env.href(f"/jobs/{job_id}")),
            html.Div([html.Label(t("compare.figure", lang)),
                      dcc.Dropdown(id="hs-compare-figure", options=names, value=names[0] if names else None,
                                   clearable=False)]),
        ]),
        html.Div(id="hs-compare-grid", className="hs-compare-grid",
                 style={"display": "grid", "gridTemplateColumns": "repeat(auto-fill, minmax(320px, 1fr))",
                        "gap": "12px"}),
        html.Div(className="hs-panel", children=[html.H3(t("compare.summary", lang)), table]),
    ])


def register(app: Any, env: Any) -> None:
    @app.callback(
        Output("hs-compare-grid", "children"),
        Input("hs-compare-figure", "value"),
        State("hs-compare-id", "data"),
        State("hs-token", "data"),
    )
    def show(name, job_id, token):
        user = env.user(token)
        if not job_id or user is None:
            raise PreventUpdate
        record = env.service.get(user, job_id)
        key = (record.get("sweep") or {}).get("key", "")
        cells = []
        for child in sweep_children(env, user, record):
            title = f"{key} = {json.dumps(child.get('sweep_value'))}"
            if name and name in (child.get("figures") or []):
                figure = decode_arrays(env.service.figure(user, child["id"], name))
                body = dcc.Graph(figure=figure, config={"displaylogo": False}, style={"height": "320px"})
            else:
                body = html.Div(child.get("status", ""), className="hs-muted")
            cells.append(html.Div(className="hs-panel hs-compare-cell", children=[
                html.Div(title, className="hs-compare-value"), body]))
        return cells
