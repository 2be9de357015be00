"""create_dash_app: the web front end (catalogue, forms, jobs, preview) over one registry.

The app calls core functions (``Plugin.validate_request``, ``run_plugin``) and the job
service (``hisci.jobs.JobService``); it never re-implements validation or job logic.
``service`` may be None: the catalogue, forms and preview still work, job pages say the
service is missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from hisci import HisciError, Plugin, Registry, Settings

from . import forms
from .i18n import norm_lang, t
from .pages import catalogue, compare, job, jobs, login, plugin_form, preview
from .style import INDEX

log = logging.getLogger("hisci.dash")
TOKEN_COOKIE = "hisci_token"


@dataclass
class AppEnv:
    """What every page needs: settings, the registry, the job service and the prefix."""

    settings: Settings
    initial_registry: Registry
    service: Any = None
    prefix: str = "/"
    previews: preview.PreviewCache = field(default_factory=lambda: preview.PreviewCache())
    watch_folder: Any = None  # set by `hicli preview`: the folder whose edits reload the page

    @property
    def registry(self) -> Registry:
        """The service's current registry (it changes on POST /api/v1/registry/reload)."""
        return self.service.registry if self.service is not None else self.initial_registry

    def href(self, path: str) -> str:
        """An in-app link (``/jobs/x`` -> ``<prefix>jobs/x``)."""
        return self.prefix.rstrip("/") + "/" + path.lstrip("/")

    def api(self, path: str) -> str:
        """A link to the HTTP API mounted next to the app (``/api/v1/...`` from the root)."""
        return "/api/v1/" + path.lstrip("/")

    def user(self, token: Any) -> Any:
        """The service's User for ``token``, or None (no service, no or bad token)."""
        if self.service is None or not token or not isinstance(token, str):
            return None
        try:
            return self.service.users.authenticate(token)
        except Exception:
            log.exception("authenticate failed")
            return None

    def resolve(self, ref: Any) -> Plugin | None:
        """The plugin a form was built from (``{"id"}`` registered, ``{"preview"}`` pasted)."""
        if not isinstance(ref, dict):
            return None
        if ref.get("preview"):
            return self.previews.plugin(ref["preview"])
        return self.registry.plugins.get(ref.get("id", ""))

    def save_upload(self, token: Any, filename: str, data: bytes) -> dict[str, Any]:
        import io

        user = self.user(token)
        if self.service is None or user is None:
            return {"value": filename, "link": "", "size": len(data)}
        saved = self.service.save_upload(user, filename, io.BytesIO(data))
        return {"value": saved.get("name", filename), "link": f"upload:{saved['id']}",
                "size": saved.get("size", len(data))}


def create_dash_app(settings: Settings | None, registry: Registry, service: Any = None,
                    requests_pathname_prefix: str = "/") -> dash.Dash:
    """The Dash app; mount its ``.server`` (Flask) under ``requests_pathname_prefix``."""
    settings = settings or Settings.from_env()
    prefix = requests_pathname_prefix if requests_pathname_prefix.endswith("/") else requests_pathname_prefix + "/"
    env = AppEnv(settings, registry, service, prefix)
    if service is not None:  # a service keeps previews in its data dir, emptied at each start
        from hisci.jobs.preview import purge_previews

        env.previews = preview.PreviewCache(root=settings.data_dir / "preview")
        purge_previews(service)  # preview jobs of an earlier start: no page shows them now
    app = dash.Dash(
        __name__,
        requests_pathname_prefix=prefix,
        suppress_callback_exceptions=True,
        title="hisci",
        update_title=None,
        index_string=INDEX,
        assets_folder="__no_assets__",
        include_assets_files=False,
        serve_locally=True,
    )
    app.layout = shell(env)
    register(app, env)
    forms.register_form_callbacks(app, env.resolve, env.save_upload)
    for page in (catalogue, plugin_form, job, jobs, preview, login, compare):
        page.register(app, env)
    app.hisci_env = env  # type: ignore[attr-defined] - for tests and the lead's wiring
    return app


def shell(env: AppEnv) -> Any:
    return html.Div([
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="hs-token", storage_type="local"),
        dcc.Store(id="hs-lang", storage_type="local", data="en"),
        html.Header(className="hs-header", children=[
            dcc.Link("hisci", href=env.href("/"), className="hs-brand"),
            html.Nav(id="hs-nav", className="hs-nav"),
            html.Span(id="hs-user", className="hs-user"),
            html.Button(id="hs-logout", className="hs-btn-small", style={"display": "none"}),
            html.Button("中文", id="hs-lang-toggle", className="hs-btn-small"),
        ]),
        html.Main(id="hs-page", className="hs-main"),
        dcc.Store(id="hs-pv-closed"),  # output of the preview page's close watcher (pages/preview.py)
    ])


def route(env: AppEnv, path: str, search: str, lang: str, token: Any) -> Any:
    """The page for a path (relative to the prefix)."""
    parts = [p for p in (path or "").split("/") if p]
    query = _query(search)
    user = env.user(token)
    try:
        if not parts:
            return catalogue.layout(env, lang)
        if parts[0] == "plugins" and len(parts) == 2:
            return plugin_form.layout(env, parts[1], lang, user, query)
        if parts[0] == "jobs" and len(parts) == 1:
            return jobs.layout(env, lang, user)
        if parts[0] == "jobs" and len(parts) == 2:
            return job.layout(env, parts[1], lang, user)
        if parts[0] == "jobs" and len(parts) == 3 and parts[2] == "compare":
            return compare.layout(env, parts[1], lang, user)
        if parts[0] == "preview":
            return preview.layout(env, lang, query.get("plugin"))
        if parts[0] == "login":
            return login.layout(env, lang, user)
    except HisciError as exc:
        return html.Div([html.H2("Error"), html.Div(str(exc), className="hs-problem")])
    return html.Div([html.H2("404"), html.P(f"No page at /{'/'.join(parts)}")], className="hs-panel")


def _query(search: str | None) -> dict[str, str]:
    from urllib.parse import parse_qs

    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items() if v}


def register(app: dash.Dash, env: AppEnv) -> None:
    @app.callback(
        Output("hs-page", "children"),
        Input("url", "pathname"),
        Input("url", "search"),
        Input("hs-lang", "data"),
        Input("hs-token", "data"),
    )
    def show_page(pathname, search, lang, token):
        path = app.strip_relative_path(pathname or "/") or ""
        return route(env, path, search, norm_lang(lang), token)

    @app.callback(
        Output("hs-nav", "children"),
        Output("hs-user", "children"),
        Output("hs-logout", "children"),
        Output("hs-logout", "style"),
        Output("hs-lang-toggle", "children"),
        Input("hs-lang", "data"),
        Input("hs-token", "data"),
    )
    def header(lang, token):
        lang = norm_lang(lang)
        user = env.user(token)
        nav = [dcc.Link(t("nav.catalogue", lang), href=env.href("/")),
               dcc.Link(t("nav.jobs", lang), href=env.href("/jobs")),
               dcc.Link(t("nav.preview", lang), href=env.href("/preview"))]
        if user is None and env.service is not None:
            nav.append(dcc.Link(t("nav.login", lang), href=env.href("/login"), id="hs-login-link"))
        name = getattr(user, "name", "") if user else ""
        return (nav, name, t("nav.logout", lang), {} if user else {"display": "none"},
                t("nav.lang", lang))

    @app.callback(
        Output("hs-lang", "data"),
        Input("hs-lang-toggle", "n_clicks"),
        State("hs-lang", "data"),
        prevent_initial_call=True,
    )
    def toggle_lang(n_clicks, lang):
        if not n_clicks:
            raise PreventUpdate
        return "en" if norm_lang(lang) == "zh_cn" else "zh_cn"

    @app.callback(
        Output("hs-token", "data", allow_duplicate=True),
        Output("url", "pathname", allow_duplicate=True),
        Input("hs-logout", "n_clicks"),
        prevent_initial_call=True,
    )
    def logout(n_clicks):
        if not n_clicks:
            raise PreventUpdate
        try:
            dash.ctx.response.delete_cookie(TOKEN_COOKIE)
        except Exception:
            log.debug("could not delete the token cookie", exc_info=True)
        return None, env.href("/login")
