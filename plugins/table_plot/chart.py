"""Build a plotly chart of two table columns (the algorithm of ``table_plot``)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

CHART_TYPES = ("scatter", "line", "bar", "box")


def build_figure(
    frame: Any,
    x: str,
    y: str,
    group: str | None = None,
    chart_type: str = "scatter",
    opacity: float = 0.8,
    marker_size: float = 8,
    log_y: bool = False,
    color: str = "#1f77b4",
    title: str = "",
) -> go.Figure:
    """One trace per group (or one trace in ``color``) of column ``y`` against ``x``.

    Parameters
    ----------
    frame : pandas.DataFrame holding the columns.
    x, y : column names; ``group`` (optional) splits the rows into coloured traces.
    chart_type : one of ``scatter``, ``line``, ``bar``, ``box``.
    opacity : marker/bar opacity in (0, 1].
    log_y : logarithmic y axis.

    Raises
    ------
    ValueError
        If a column is missing (the message lists the table's columns) or the chart type
        is unknown.
    """
    if chart_type not in CHART_TYPES:
        raise ValueError(f"chart_type {chart_type!r} is unknown; use one of {', '.join(CHART_TYPES)}")
    for role, column in (("x", x), ("y", y), ("group", group)):
        if column and column not in frame.columns:
            raise ValueError(f"{role} column {column!r} is not in the table; columns: "
                             f"{', '.join(map(str, frame.columns))}")
    groups = [(str(k), g) for k, g in frame.groupby(group, sort=False)] if group else [(y, frame)]
    fig = go.Figure()
    for name, rows in groups:
        style = {} if group else {"marker_color": color}
        fig.add_trace(_trace(chart_type, rows[x], rows[y], name, opacity, marker_size, style))
    fig.update_layout(title=title or None, xaxis_title=x, yaxis_title=y, template="plotly_white",
                      legend_title=group or None)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def _trace(kind: str, xs: Any, ys: Any, name: str, opacity: float, size: float,
           style: dict[str, Any]) -> go.BaseTraceType:
    if kind == "bar":
        return go.Bar(x=xs, y=ys, name=name, opacity=opacity, **style)
    if kind == "box":
        return go.Box(x=xs, y=ys, name=name, opacity=opacity, **style)
    mode = "markers" if kind == "scatter" else "lines+markers"
    return go.Scatter(x=xs, y=ys, name=name, mode=mode, opacity=opacity,
                      marker={"size": size, **({"color": style["marker_color"]} if style else {})})
