"""Log in with a token (``hicli user add NAME`` prints one)."""

from __future__ import annotations

import logging
from typing import Any

import dash
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from ..i18n import norm_lang, t

TOKEN_COOKIE = "hisci_token"
COOKIE_MAX_AGE = 8 * 3600  # the login cookie expires after a working day


def over_https() -> bool:
    """True when the page was served over https (directly, or behind a proxy that says so
    with X-Forwarded-Proto, or with ``hicli serve --https``/HISCI_HTTPS=1)."""
    import os

    import flask

    proto = flask.request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return flask.request.scheme == "https" or proto == "https" or os.environ.get("HISCI_HTTPS") == "1"


def layout(env: Any, lang: str, user: Any) -> Any:
    if env.service is None:
        return html.Div(t("login.no_service", lang), className="hs-panel")
    return html.Div(className="hs-panel", style={"maxWidth": "480px"}, children=[
        html.H2(t("login.title", lang)),
        html.Div(t("login.ok", lang, name=user.name), className="hs-note") if user else None,
        html.Label(t("login.token", lang), className="hs-label", htmlFor="hs-login-token"),
        dcc.Input(id="hs-login-token", type="password", className="hs-input", debounce=False,
                  autoComplete="off"),
        html.Div(className="hs-actions", children=[
            html.Button(t("login.button", lang), id="hs-login-btn", className="hs-btn hs-primary")]),
        html.Div(id="hs-login-msg", className="hs-error"),
    ])


def register(app: Any, env: Any) -> None:
    @app.callback(
        Output("hs-token", "data"),
        Output("url", "pathname", allow_duplicate=True),
        Output("hs-login-msg", "children"),
        Input("hs-login-btn", "n_clicks"),
        Input("hs-login-token", "n_submit"),
        State("hs-login-token", "value"),
        State("hs-lang", "data"),
        prevent_initial_call=True,
    )
    def log_in(n_clicks, n_submit, token, lang):
        if not (n_clicks or n_submit):
            raise PreventUpdate
        token = (token or "").strip()
        user = env.user(token)
        if user is None:
            return no_update, no_update, t("login.bad", norm_lang(lang))
        try:  # the API's file downloads read the token from this cookie
            dash.ctx.response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Lax",
                                         secure=over_https(), max_age=COOKIE_MAX_AGE)
        except Exception:
            logging.getLogger("hisci.dash").debug("could not set the token cookie", exc_info=True)
        return token, env.href("/"), ""
