"""Catalogue: one card per plugin from meta.json; search, tag filter; invalid ones marked."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, dcc, html

from ..i18n import norm_lang, t


def _tags(env: Any) -> list[str]:
    tags: set[str] = set()
    for plugin in env.registry:
        tags.update(tag for tag in plugin.meta.tag if tag.lower() not in ("vue", "shiny"))
    return sorted(tags)


def layout(env: Any, lang: str) -> Any:
    return html.Div([
        html.H1(t("nav.catalogue", lang)),
        html.Div(className="hs-filters", children=[
            dcc.Input(id="hs-cat-search", type="search", placeholder=t("cat.search", lang),
                      className="hs-input", debounce=False),
            dcc.Dropdown(id="hs-cat-tag", options=[{"label": x, "value": x} for x in _tags(env)],
                         placeholder=t("cat.tag", lang), clearable=True),
        ]),
        html.Div(id="hs-cat-count", className="hs-muted", children=t("cat.count", lang, n=len(env.registry))),
        html.Div(id="hs-cat-cards", className="hs-cards", children=cards(env, "", None, lang)),
    ])


def cards(env: Any, text: str, tag: str | None, lang: str) -> list[Any]:
    out = [card(env, plugin, lang) for plugin in env.registry.search(text or "", tag or None)]
    needle = (text or "").lower()
    if not tag:
        for rejected in env.registry.problems:
            if needle in rejected.id.lower() or needle in rejected.folder.lower():
                out.append(invalid_card(env, rejected, lang))
    if not out:
        out = [html.Div(t("cat.none", lang), className="hs-muted")]
    return out


def card(env: Any, plugin: Any, lang: str) -> Any:
    info = plugin.meta.card(lang)
    rows = [
        html.H3(dcc.Link(info["name"] or plugin.id, href=env.href(f"/plugins/{plugin.id}"))),
        html.Div(plugin.id, className="hs-muted"),
        html.P(info["intro"]),
        html.Div([html.Span(tag, className="hs-tag") for tag in info["tags"]]),
    ]
    facts = []
    if info["author"]:
        facts.append(f"{t('cat.author', lang)}: {info['author']}")
    if info["version"]:
        facts.append(f"{t('cat.version', lang)}: {info['version']}")
    if facts:
        rows.append(html.Div(" · ".join(facts), className="hs-muted"))
    if info["citation"]:
        rows.append(html.Details([html.Summary(t("cat.citation", lang), className="hs-muted"),
                                  dcc.Markdown(info["citation"], className="hs-muted")]))
    if not plugin.runnable:
        rows.append(html.Span(t("cat.not_runnable", lang), className="hs-badge"))
    if plugin.warnings:
        rows.append(html.Details([html.Summary(t("cat.warnings", lang, n=len(plugin.warnings)),
                                               className="hs-badge hs-badge-warning"),
                                  problem_list(list(plugin.warnings))]))
    rows.append(html.Div([
        dcc.Link(t("cat.open", lang), href=env.href(f"/plugins/{plugin.id}"), className="hs-btn-small"),
        " ",
        dcc.Link(t("cat.preview", lang), href=env.href(f"/preview?plugin={plugin.id}"), className="hs-btn-small"),
    ]))
    return html.Div(rows, className="hs-card", **{"data-plugin": plugin.id})


def invalid_card(env: Any, rejected: Any, lang: str) -> Any:
    problems = rejected.problems
    return html.Div(className="hs-card hs-invalid", **{"data-plugin": rejected.id}, children=[
        html.H3([rejected.id, " ", html.Span(t("cat.invalid", lang), className="hs-badge hs-badge-invalid")]),
        html.Div(rejected.folder, className="hs-muted"),
        problem_list(problems[:6]),
        html.Div(f"… +{len(problems) - 6}", className="hs-muted") if len(problems) > 6 else None,
    ])


def problem_list(problems: list[Any]) -> Any:
    """Problems as a list: file name, pointer, message (the preview uses it too)."""
    from pathlib import Path

    items = []
    for p in problems:
        where = [html.Span(Path(p.file).name, className="hs-file-name")] if p.file else []
        if p.pointer:
            where.append(html.Code(p.pointer, className="hs-pointer"))
        hint = [html.Div(f"Hint: {p.hint}", className="hs-muted")] if p.hint else []
        items.append(html.Li(where + [html.Span(p.message)] + hint,
                             **{"data-pointer": p.pointer or "", "data-file": Path(p.file).name if p.file else ""}))
    return html.Ul(items, className="hs-problems")


def register(app: Any, env: Any) -> None:
    @app.callback(
        Output("hs-cat-cards", "children"),
        Input("hs-cat-search", "value"),
        Input("hs-cat-tag", "value"),
        State("hs-lang", "data"),
        prevent_initial_call=True,
    )
    def filter_cards(text, tag, lang):
        return cards(env, text or "", tag, norm_lang(lang))
