"""The "live" tick of a plugin form (plugins with ``runtime.live``): which input comes from
which source, and when to stop. Its callback fills the ``hs-live`` store that the form's
validation and the submit read."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, dcc, html

KINDS = [{"label": "folder (new complete files)", "value": "watch"},
         {"label": "ZeroMQ (PULL/SUB address)", "value": "zmq"},
         {"label": "Bluesky 0MQ proxy", "value": "bluesky"}]


def section(plugin: Any) -> Any:
    """The live controls, or None for a plugin without a live mode."""
    if not (plugin.runtime and plugin.runtime.live):
        return None
    inputs = [{"label": key, "value": key} for key in plugin.ui.data]
    return html.Div(className="hs-panel", id="hs-live-form", children=[
        dcc.Checklist(id="hs-live-on", options=[{"label": " Live: process items as they arrive", "value": "on"}],
                      value=[]),
        html.Div(id="hs-live-fields", style={"display": "none"}, children=[
            html.Label(["input", dcc.Dropdown(id="hs-live-input", options=inputs,
                                              value=inputs[0]["value"] if inputs else None, clearable=False)]),
            html.Label(["source", dcc.Dropdown(id="hs-live-kind", options=KINDS, value="watch", clearable=False)]),
            html.Label(["folder or address (on the worker)",
                        dcc.Input(id="hs-live-address", type="text", placeholder="/data/run42 or tcp://host:5555",
                                  debounce=True, style={"width": "100%"})]),
            html.Label(["stop after N items", dcc.Input(id="hs-live-until", type="number", min=1, step=1)]),
            html.Label(["stop after idle seconds", dcc.Input(id="hs-live-idle", type="number", min=1,
                                                             placeholder=str(int(plugin.runtime.idle_timeout)))]),
        ]),
    ])


def live_part(on: list | None, name: str | None, kind: str | None, address: str | None,
              until: Any, idle: Any) -> dict[str, Any] | None:
    """The request's ``live`` object from the controls (None when the tick is off)."""
    if not on or not name:
        return None
    address = (address or "").strip()
    live: dict[str, Any] = {"watch": {}, "zmq": {}, "bluesky": {}}
    live[kind or "watch"][name] = address or ""
    if until:
        live["until"] = int(until)
    if idle:
        live["idle"] = float(idle)
    return live


def register(app: Any) -> None:
    @app.callback(
        Output("hs-live", "data"),
        Output("hs-live-fields", "style"),
        Input("hs-live-on", "value"),
        Input("hs-live-input", "value"),
        Input("hs-live-kind", "value"),
        Input("hs-live-address", "value"),
        Input("hs-live-until", "value"),
        Input("hs-live-idle", "value"),
    )
    def update(on, name, kind, address, until, idle):
        live = live_part(on, name, kind, address, until, idle)
        return live, ({} if on else {"display": "none"})
