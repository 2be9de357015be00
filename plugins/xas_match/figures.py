"""Plotly figures of the three modes (relative energies are turned back into eV)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .analysis import LcfOutcome, PcaOutcome
from .library import Library, NormalizedSpectrum
from .matching import Match

__all__ = ["fractions_figure", "lcf_figure", "match_figure", "pca_figure", "target_figure"]


def match_figure(ns: NormalizedSpectrum, matches: list[Match], lib: Library,
                 fit_range: tuple[float, float]) -> go.Figure:
    """Normalised spectrum with its top matches, each drawn at the found shift."""
    fig = go.Figure()
    fig.add_scatter(x=ns.energy, y=ns.norm, name=f"{ns.name} (E0 {ns.e0:.1f} eV)",
                    line={"color": "black", "width": 3})
    sub = lib.for_edge(ns.element, ns.edge)
    for m in matches:
        e = sub.grid + ns.edge_energy - m.shift_eV  # reference in the query's energy frame
        fig.add_scatter(x=e, y=sub.norm[m.row], name=f"{m.rank}. {m.reference} "
                        f"({m.score:.4g}, shift {m.shift_eV:+.2f} eV)", line={"width": 1.5})
    lo, hi = fit_range
    fig.add_vrect(x0=ns.edge_energy + lo, x1=ns.edge_energy + hi, fillcolor="grey",
                  opacity=0.08, line_width=0)
    fig.update_layout(title=f"{ns.name}: best matches ({ns.element} {ns.edge} edge)",
                      xaxis_title="Energy (eV)", yaxis_title="Normalised μ(E)",
                      template="plotly_white")
    fig.update_xaxes(range=[ns.edge_energy + lo - 10, ns.edge_energy + hi + 10])
    return fig


def lcf_figure(outcome: LcfOutcome, i: int, name: str, edge_energy: float, lib: Library
               ) -> go.Figure:
    """Data, fit, weighted components and residual of spectrum ``i``."""
    res = outcome.best[i]
    x = outcome.x + edge_energy
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25],
                        vertical_spacing=0.04)
    fig.add_scatter(x=x, y=outcome.y[i], name=name, mode="markers",
                    marker={"color": "black", "size": 5}, row=1, col=1)
    fig.add_scatter(x=x, y=res.fit[0], name=f"fit (R = {res.r_factor[0]:.2e})",
                    line={"color": "red", "width": 2}, row=1, col=1)
    rows = lib.index(res.standards)
    for j, (std, w) in enumerate(zip(res.standards, res.weights[0])):
        comp = w * np.interp(outcome.x - res.shifts[0, j], lib.grid, lib.norm[rows[j]])
        fig.add_scatter(x=x, y=comp, name=f"{w:.3f} × {std}", line={"dash": "dot"},
                        row=1, col=1)
    fig.add_scatter(x=x, y=outcome.y[i] - res.fit[0], name="residual",
                    line={"color": "grey"}, row=2, col=1)
    fig.update_layout(title=f"LCF of {name}", template="plotly_white",
                      yaxis_title="Normalised μ(E)", yaxis2_title="residual")
    fig.update_xaxes(title_text="Energy (eV)", row=2, col=1)
    return fig


def fractions_figure(table, standards: list[str]) -> go.Figure:
    """Fractions (with standard errors) against the spectrum index of a batch."""
    fig = go.Figure()
    idx = np.arange(len(table))
    for s in standards:
        fig.add_scatter(x=idx, y=table[s], name=s, mode="lines+markers",
                        error_y={"type": "data", "array": table[f"{s}_stderr"], "visible": True},
                        text=table["spectrum"])
    fig.add_scatter(x=idx, y=table["sum"], name="sum", line={"color": "black", "dash": "dash"})
    fig.update_layout(title="LCF fractions across the batch", xaxis_title="spectrum index",
                      yaxis_title="fraction", template="plotly_white")
    return fig


def pca_figure(outcome: PcaOutcome, edge_energy: float) -> go.Figure:
    """Scree (variance) and IND plots, and the leading components."""
    m = outcome.model
    k = np.arange(1, m.variances.size + 1)
    fig = make_subplots(rows=1, cols=3, subplot_titles=("variance", "Malinowski IND",
                                                        "components"))
    fig.add_scatter(x=k, y=m.variances, mode="lines+markers", name="fractional variance",
                    row=1, col=1)
    fig.add_scatter(x=k[:-1], y=m.ind, mode="lines+markers", name=f"IND (nsig = {m.nsig})",
                    row=1, col=2)
    for j in range(min(m.nsig + 1, m.components.shape[0])):
        fig.add_scatter(x=m.x + edge_energy, y=m.components[j], name=f"component {j + 1}",
                        row=1, col=3)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(title=f"PCA: {m.nsig} significant components", template="plotly_white")
    return fig


def target_figure(outcome: PcaOutcome, targets: dict[str, np.ndarray], edge_energy: float
                  ) -> go.Figure:
    """Candidate standards and their target-transform reconstructions."""
    fig = go.Figure()
    x = outcome.model.x + edge_energy
    for name, (t, fit) in targets.items():
        fig.add_scatter(x=x, y=t, name=name, mode="lines")
        fig.add_scatter(x=x, y=fit, name=f"{name} (TT)", line={"dash": "dot"})
    fig.update_layout(title="Target transformation", xaxis_title="Energy (eV)",
                      yaxis_title="Normalised μ(E)", template="plotly_white")
    return fig
