"""The pdf plugin's plotly figures."""

from __future__ import annotations

import numpy as np

from hisci import RunContext

from .transform import PDFResult


def save_figures(ctx: RunContext, result: PDFResult, labels: list[str], peaks: np.ndarray) -> None:
    """I(Q), S(Q), F(Q) and G(r) of up to 8 frames (G(r) with its peaks), and a G(r) map of a series."""
    import plotly.graph_objects as go

    x_label = {"iq": "Q (Å⁻¹)", "sq": "Q (Å⁻¹)", "fq": "Q (Å⁻¹)"}
    y_label = {"iq": "I(Q) (a.u.)", "sq": "S(Q)", "fq": "F(Q) (Å⁻¹)"}
    shown = list(range(min(len(labels), 8)))
    for kind in ("iq", "sq", "fq"):
        data = np.atleast_2d(getattr(result, kind))
        fig = go.Figure()
        for k in shown:
            fig.add_trace(go.Scatter(x=result.q, y=data[k], mode="lines", name=labels[k]))
        fig.update_layout(title=f"{y_label[kind]}", xaxis_title=x_label[kind], yaxis_title=y_label[kind],
                          template="plotly_white")
        ctx.save_figure(fig, kind)
    gr = np.atleast_2d(result.gr)
    fig = go.Figure()
    for k in shown:
        fig.add_trace(go.Scatter(x=result.r, y=gr[k], mode="lines", name=labels[k]))
    if peaks.size:
        heights = np.interp(peaks, result.r, gr[0])
        fig.add_trace(go.Scatter(
            x=peaks, y=heights, mode="markers+text", name="peaks",
            text=[f"{p:.3f}" for p in peaks], textposition="top center",
            marker={"symbol": "triangle-down", "size": 9, "color": "black"},
        ))
    fig.update_layout(title="G(r)", xaxis_title="r (Å)", yaxis_title="G(r) (Å⁻²)",
                      template="plotly_white", hovermode="x unified")
    ctx.save_figure(fig, "gr")
    if len(labels) > 1:
        heat = go.Figure(go.Heatmap(z=gr, x=result.r, y=list(range(len(labels))),
                                    colorscale="RdBu_r", zmid=0, colorbar={"title": "G (Å⁻²)"},
                                    customdata=np.array(labels)[:, None].repeat(gr.shape[1], 1),
                                    hovertemplate="%{customdata}<br>r=%{x:.2f} Å<br>G=%{z:.3f}<extra></extra>"))
        heat.update_layout(title="G(r) map", xaxis_title="r (Å)", yaxis_title="frame",
                           template="plotly_white")
        ctx.save_figure(heat, "gr_map")
