"""The live part of a job page: figures that grow as a live job publishes results.

Each tick reads only the events after the last one seen (``JobService.live_events``) and
sends plotly ``Patch`` updates (append a trace or points), so a large figure is never drawn
again from scratch. One drawer per kind of published result:

=========  ======================  ===================================================
name       plugin                  figure
=========  ======================  ===================================================
frame      pdf                     G(r) waterfall (one offset trace per frame) + latest I(Q)
rates      nhit_trigger            input MB/s and trigger rate (Hz) over time
lcf        xas_match               LCF fraction of each standard per spectrum
match      xas_match               best match score per spectrum
batch      muser_imaging           latest Stokes I image + peak brightness per batch
(other)    any                     items published over time
=========  ======================  ===================================================
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import Patch, dcc, html

WATERFALL_OFFSET = 2.0  # G(r) units between successive frames


def _fig(title: str, x: str, y: str, **layout: Any) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white",
                      margin={"l": 50, "r": 10, "t": 40, "b": 40}, height=360, uirevision="live", **layout)
    return fig


def panel(record: dict[str, Any]) -> Any:
    """The live panel of a job page (empty graphs, filled by :func:`apply`)."""
    sources = record.get("live_spec") or {}
    names = [*sources.get("watch", {}), *sources.get("zmq", {}), *sources.get("bluesky", {})]
    return html.Div(className="hs-panel", id="hs-live-panel", children=[
        html.H3("Live"),
        html.Div(f"sources: {', '.join(names)}", className="hs-muted"),
        html.Div(id="hs-live-lag", className="hs-muted", children="waiting for the first item"),
        dcc.Store(id="hs-live-state", data={"after": 0, "kinds": []}),
        html.Div(className="hs-live-grid", children=[
            dcc.Graph(id="hs-live-main", figure=_fig("waiting for data", "", ""), config={"displaylogo": False}),
            dcc.Graph(id="hs-live-side", figure=_fig("", "", ""), config={"displaylogo": False}),
        ]),
    ])


def lag_text(event: dict[str, Any]) -> str:
    parts = [f"{name}: received {s.get('received', 0)}, processed {s.get('processed', 0)}"
             for name, s in (event.get("sources") or {}).items()]
    text = "; ".join(parts) + f" · {event.get('waiting', 0)} waiting, {event.get('seconds_behind', 0):.1f} s behind"
    if event.get("dropped"):
        text += f" · {event['dropped']} DROPPED"
    if event.get("lost"):
        text += f" · {event['lost']} LOST in a crash"
    return text


def apply(events: list[dict[str, Any]], state: dict[str, Any]) -> tuple[Any, Any, str | None, dict[str, Any]]:
    """Updates of the main and side graphs from new ``events``, the lag line and the new state.

    The first results give whole (small) figures; later ones give ``Patch`` updates that only
    append. ``state`` holds ``after`` (last event n), ``kinds`` (the kind drawn) and ``count``
    (results drawn so far)."""
    main: Any = Patch()
    side: Any = Patch()
    touched = [False, False]
    lag = None
    kinds = list(state.get("kinds") or [])
    count = int(state.get("count") or 0)
    for event in events:
        if event["type"] == "lag":
            lag = lag_text(event)
        elif event["type"] == "live_end":
            lag = (lag or "") + f" · stopped: {event.get('stop')}"
        if event["type"] != "live":
            continue
        name, data = event.get("name"), event.get("data") or {}
        if not kinds:  # the first kind of result published owns the graphs
            kinds.append(name if name in DRAWERS and REQUIRED[name] <= set(data) else f"generic:{name}")
            main, side = _setup(kinds[0])
            touched = [True, True]
        if name != kinds[0].removeprefix("generic:"):  # side results (a skipped file) stay in the log
            continue
        DRAWERS.get(kinds[0], _generic)(main, side, data, event, count)
        touched[0] = True
        touched[1] = touched[1] or name in ("frame", "batch", "rates", "lcf")
        count += 1
    after = events[-1]["n"] if events else state.get("after", 0)
    return (main if touched[0] else None, side if touched[1] else None, lag,
            {"after": after, "kinds": kinds, "count": count})


def _setup(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Empty main and side figures (plain dicts the drawers fill like a Patch) for ``name``."""
    layouts = {
        "frame": (_fig("G(r) waterfall", "r (Å)", "G(r) + offset"), _fig("latest I(Q)", "Q (Å⁻¹)", "I(Q)")),
        "rates": (_fig("trigger rate", "wall time (s)", "Hz"), _fig("input rate", "wall time (s)", "MB/s")),
        "lcf": (_fig("LCF fractions", "spectrum", "fraction"), _fig("R factor", "spectrum", "R")),
        "match": (_fig("best match score", "spectrum", "score"), _fig("", "", "")),
        "batch": (_fig("peak brightness per batch", "batch", "Jy/beam"), _fig("latest Stokes I", "", "",
                                                                               yaxis={"scaleanchor": "x"})),
    }
    label = name.removeprefix("generic:")
    fig_main, fig_side = layouts.get(name, (_fig(f"{label}: items received", "item", "sequence number"),
                                            _fig("", "", "")))
    main = {"data": [], "layout": fig_main.layout.to_plotly_json()}
    side = {"data": [], "layout": fig_side.layout.to_plotly_json()}
    if name == "rates":
        main["data"].append({"type": "scatter", "mode": "lines+markers", "name": "trigger rate", "x": [], "y": []})
        side["data"].append({"type": "scatter", "mode": "lines+markers", "name": "input MB/s", "x": [], "y": []})
    if name == "lcf":
        side["data"].append({"type": "scatter", "mode": "lines+markers", "name": "R factor", "x": [], "y": []})
    return main, side


def _frame(main: Any, side: Any, data: dict, event: dict, count: int) -> None:
    gr = [None if v is None else v + WATERFALL_OFFSET * count for v in data.get("gr") or []]
    main["data"].append({"type": "scatter", "mode": "lines", "name": str(data.get("label", event.get("seq"))),
                         "x": data.get("r"), "y": gr, "line": {"width": 1}})
    side["data"] = [{"type": "scatter", "mode": "lines", "name": str(data.get("label", "")),
                     "x": data.get("q"), "y": data.get("iq")}]


def _rates(main: Any, side: Any, data: dict, event: dict, count: int) -> None:
    main["data"][0]["x"].append(data.get("wall_s"))
    main["data"][0]["y"].append(data.get("trigger_rate_hz"))
    side["data"][0]["x"].append(data.get("wall_s"))
    side["data"][0]["y"].append(data.get("input_mb_s"))


def _lcf(main: Any, side: Any, data: dict, event: dict, count: int) -> None:
    label = data.get("spectrum", str(count))
    for k, (standard, weight) in enumerate((data.get("weights") or {}).items()):
        if count == 0:
            main["data"].append({"type": "scatter", "mode": "lines+markers", "name": standard,
                                 "x": [label], "y": [weight]})
        else:
            main["data"][k]["x"].append(label)
            main["data"][k]["y"].append(weight)
    side["data"][0]["x"].append(label)
    side["data"][0]["y"].append(data.get("r_factor"))


def _match(main: Any, side: Any, data: dict, event: dict, count: int) -> None:
    best = (data.get("matches") or [{}])[0]
    if count == 0:
        main["data"].append({"type": "bar", "name": "best score", "x": [], "y": [], "text": []})
    main["data"][0]["x"].append(data.get("spectrum", str(count)))
    main["data"][0]["y"].append(best.get("score"))
    main["data"][0]["text"].append(best.get("reference", ""))


def _batch(main: Any, side: Any, data: dict, event: dict, count: int) -> None:
    peaks = [p for p in data.get("peak_jy") or [] if p is not None]
    if count == 0:
        main["data"].append({"type": "scatter", "mode": "lines+markers", "name": "max over channels",
                             "x": [], "y": []})
    main["data"][0]["x"].append(data.get("batch"))
    main["data"][0]["y"].append(max(peaks) if peaks else None)
    if data.get("thumbnail"):
        side["data"] = [{"type": "heatmap", "z": data["thumbnail"], "colorscale": "Inferno"}]


def _generic(main: Any, side: Any, data: dict, event: dict, count: int) -> None:
    if count == 0:
        main["data"].append({"type": "scatter", "mode": "markers", "name": "items", "x": [], "y": []})
    main["data"][0]["x"].append(count)
    main["data"][0]["y"].append(event.get("seq"))


DRAWERS = {"frame": _frame, "rates": _rates, "lcf": _lcf, "match": _match, "batch": _batch}
#: The fields a result needs for its drawer (else it is drawn as generic items).
REQUIRED = {"frame": {"r", "gr", "q", "iq"}, "rates": {"wall_s", "trigger_rate_hz", "input_mb_s"},
            "lcf": {"weights", "r_factor"}, "match": {"matches"}, "batch": {"batch"}}
