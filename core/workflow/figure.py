"""The step graph of a workflow as a plotly figure: steps by dependency depth, links as
arrows, each step coloured by its state (or red when it has a problem)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Problem

STATE_COLOURS = {
    "queued": "#9aa5b1", "held": "#b08900", "running": "#1f77b4", "succeeded": "#2ca02c",
    "failed": "#d62728", "cancelled": "#7f7f7f", "skipped": "#c7c7c7", "planned": "#6c8ebf",
    "problem": "#d62728",
}


def graph_of_workflow(plugin: Any) -> dict[str, dict[str, Any]]:
    """Nodes of a workflow as written (not expanded): plugin, label, depends_on."""
    wf = plugin.workflow
    return {sid: {"plugin": s.plugin, "label": s.label,
                  "depends_on": [u for u in s.upstream if u in wf.steps]} for sid, s in wf.steps.items()}


def problems_by_step(problems: list[Problem]) -> dict[str, list[str]]:
    """Problems whose pointer is inside ``/steps/<id>/``, grouped by step id."""
    out: dict[str, list[str]] = {}
    for p in problems:
        parts = p.pointer.split("/")
        if len(parts) > 2 and parts[1] == "steps":
            out.setdefault(parts[2], []).append(p.message)
    return out


def layers(graph: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Depth of each node: 0 for steps that read no step, else 1 + the deepest input."""
    depth: dict[str, int] = {}

    def visit(sid: str, seen: tuple[str, ...]) -> int:
        if sid in depth:
            return depth[sid]
        if sid in seen:  # a cycle (reported elsewhere): cut it here
            return 0
        ups = [u for u in graph[sid].get("depends_on") or [] if u in graph]
        depth[sid] = 1 + max((visit(u, seen + (sid,)) for u in ups), default=-1)
        return depth[sid]

    for sid in graph:
        visit(sid, ())
    return depth


def graph_figure(graph: Mapping[str, Mapping[str, Any]], states: Mapping[str, str] | None = None,
                 problems: Mapping[str, list[str]] | None = None,
                 links: Mapping[str, str] | None = None) -> Any:
    """A plotly figure of ``graph`` (step id -> plugin, label, depends_on).

    ``states`` colours the steps (default "planned"); a step in ``problems`` is drawn red
    with its messages in the hover; ``links`` (step -> URL) go into ``customdata`` so a
    click can open the step's job page.
    """
    import plotly.graph_objects as go

    states = states or {}
    problems = problems or {}
    depth = layers(graph)
    columns: dict[int, list[str]] = {}
    for sid in graph:
        columns.setdefault(depth[sid], []).append(sid)
    pos = {sid: (d, -(i - (len(ids) - 1) / 2)) for d, ids in columns.items() for i, sid in enumerate(ids)}
    fig = go.Figure()
    for sid, node in graph.items():
        for up in node.get("depends_on") or []:
            if up in pos:
                (x0, y0), (x1, y1) = pos[up], pos[sid]
                fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y",
                                   showarrow=True, arrowhead=3, arrowsize=1.2, arrowwidth=1.5,
                                   arrowcolor="#888", standoff=18, startstandoff=18, text="")
    ids = list(graph)
    state_of = {sid: "problem" if sid in problems else states.get(sid, "planned") for sid in ids}
    hover = []
    for sid in ids:
        node = graph[sid]
        lines = [f"<b>{sid}</b> ({node.get('plugin', '')})", node.get("label") or "", state_of[sid]]
        lines += problems.get(sid, [])
        hover.append("<br>".join(x for x in lines if x))
    fig.add_trace(go.Scatter(
        x=[pos[s][0] for s in ids], y=[pos[s][1] for s in ids], mode="markers+text",
        text=[f"{s}<br><sub>{graph[s].get('plugin', '')}</sub>" for s in ids], textposition="bottom center",
        marker={"size": 34, "color": [STATE_COLOURS.get(state_of[s], "#9aa5b1") for s in ids],
                "line": {"width": 2, "color": "#333"}, "symbol": "square"},
        hovertext=hover, hoverinfo="text", customdata=[(links or {}).get(s, "") for s in ids],
        name="steps", showlegend=False))
    height = 140 + 90 * max((len(c) for c in columns.values()), default=1)
    fig.update_layout(xaxis={"visible": False, "range": [-0.5, max(depth.values(), default=0) + 0.5]},
                      yaxis={"visible": False}, height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      plot_bgcolor="white", meta={"states": state_of})
    return fig
