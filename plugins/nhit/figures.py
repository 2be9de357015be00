"""Plotly figures for the N-Hit plugins (built from plain arrays; no I/O)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


def _layout(fig: go.Figure, title: str, x: str, y: str, log_y: bool = False) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white",
                      bargap=0.02)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def trigger_rate(times_ns: np.ndarray, start_ns: int, stop_ns: int, bins: int = 100) -> go.Figure:
    """Trigger rate (Hz) against time (s)."""
    bins = max(1, min(bins, len(times_ns) // 5 or 1))
    edges = np.linspace(start_ns, stop_ns, bins + 1)
    counts, _ = np.histogram(times_ns, edges)
    width_s = (edges[1] - edges[0]) * 1e-9
    centers = 0.5 * (edges[:-1] + edges[1:]) * 1e-9
    fig = go.Figure(go.Scatter(x=centers, y=counts / width_s, mode="lines+markers",
                               line_shape="hvh", name="trigger rate"))
    return _layout(fig, "Trigger rate", "time (s)", "rate (Hz)")


def histogram(values: np.ndarray, title: str, x: str, log_y: bool = True,
              vline: float | None = None) -> go.Figure:
    """Integer-friendly histogram of ``values``."""
    values = np.asarray(values)
    fig = go.Figure(go.Histogram(x=values, nbinsx=min(100, max(10, len(np.unique(values))))))
    if vline is not None:
        fig.add_vline(x=vline, line_dash="dash", annotation_text=f"{vline:g}")
    return _layout(fig, title, x, "events", log_y)


def efficiency(centers: np.ndarray, eff: np.ndarray, counts: np.ndarray, threshold: int,
               x_title: str) -> go.Figure:
    """Trigger efficiency against shower multiplicity (binomial error bars)."""
    err = np.sqrt(np.clip(eff * (1 - eff), 0, None) / np.maximum(counts, 1))
    fig = go.Figure(go.Scatter(x=centers, y=eff, error_y={"type": "data", "array": err},
                               mode="markers+lines", name="efficiency",
                               customdata=counts,
                               hovertemplate="%{x}: %{y:.3f} (%{customdata} showers)"))
    fig.add_vline(x=threshold, line_dash="dash", annotation_text=f"N = {threshold}")
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[0, 1.05])
    return _layout(fig, "Trigger efficiency", x_title, "fraction triggered")


def noise_rate(measured_hz: float, predicted_hz: float, threshold: int) -> go.Figure:
    """Noise-only trigger rate next to the Poisson prediction."""
    fig = go.Figure(go.Bar(x=["measured (noise-only events)", "Poisson prediction"],
                           y=[measured_hz, predicted_hz], text=[f"{measured_hz:.1f}",
                                                                f"{predicted_hz:.1f}"]))
    return _layout(fig, f"Noise-only trigger rate, N = {threshold}", "", "rate (Hz)")
