"""Plotly figures for ct_recon: orthogonal slices, a sinogram and the centre-search metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .centre import CentreSearch

__all__ = ["centre_figure", "sinogram_figure", "slices_figure", "slices_figure_arrays"]


#: The most (angles, columns) the sinogram figure shows.
SINOGRAM_MAX = (720, 1024)


def _heat(img: np.ndarray, **kw: Any) -> Any:
    import plotly.graph_objects as go

    return go.Heatmap(z=np.asarray(img, dtype=np.float32), colorscale="Gray", **kw)


#: The most pixels per axis a slice of the slices figure shows.
SLICE_MAX = 1024


def slices_figure(volume_path: str | Path) -> Any:
    """Central slices in three orientations, read from ``/exchange/data`` of a volume file
    (one slice at a time, never the whole volume)."""
    import h5py

    with h5py.File(volume_path, "r") as f:
        ds = f["exchange/data"]
        nz, ny, nx = ds.shape
        xy = ds[nz // 2]
        xz = ds[:, ny // 2, :]
        yz = ds[:, :, nx // 2]
    return slices_figure_arrays(xy, xz, yz)


def _thin_heat(img: np.ndarray, **kw: Any) -> Any:
    """A heatmap of at most :data:`SLICE_MAX` pixels per axis (by striding), axes in the
    image's own pixel numbers."""
    step_r = -(-img.shape[0] // SLICE_MAX)
    step_c = -(-img.shape[1] // SLICE_MAX)
    if step_r == step_c == 1:
        return _heat(img, **kw)
    return _heat(img[::step_r, ::step_c], x=np.arange(0, img.shape[1], step_c),
                 y=np.arange(0, img.shape[0], step_r), **kw)


def slices_figure_arrays(xy: np.ndarray, xz: np.ndarray, yz: np.ndarray) -> Any:
    """The slices figure from the three central sections of a volume of shape (nz, ny, nx):
    ``xy`` = volume[nz // 2], ``xz`` = volume[:, ny // 2, :], ``yz`` = volume[:, :, nx // 2]
    (kept while the volume is written, so the volume is not read back). Each is shown at most
    :data:`SLICE_MAX` pixels per axis: a 2048 x 2048 slice made 24 MB of figure JSON and as
    much HTML, in 0.6 s after the last row, for more pixels than a screen has."""
    from plotly.subplots import make_subplots

    nz, nx = xz.shape
    ny = yz.shape[1]
    fig = make_subplots(
        rows=1, cols=3,
        subplot_titles=(f"slice (row {nz // 2})", f"x-z (image row {ny // 2})", f"y-z (image column {nx // 2})"),
    )
    fig.add_trace(_thin_heat(xy, coloraxis="coloraxis"), 1, 1)
    fig.add_trace(_thin_heat(xz, coloraxis="coloraxis"), 1, 2)
    fig.add_trace(_thin_heat(yz, coloraxis="coloraxis"), 1, 3)
    for c in (1, 2, 3):
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{'' if c == 1 else c}", row=1, col=c)
    fig.update_layout(
        title="Reconstruction (attenuation per pixel; row 0 at the top, not flipped)",
        coloraxis={"colorscale": "Gray"},
    )
    return fig


def sinogram_figure(sinogram: np.ndarray, theta_deg: np.ndarray, center: float) -> Any:
    """The middle row's sinogram (line integrals) with the rotation centre marked.

    Shown at most :data:`SINOGRAM_MAX` (angles, columns) by striding, with the true column
    numbers and angles on the axes: a 1500 x 2048 heatmap cost 0.7 s and 40 MB of figure
    files, serially before any row was reconstructed, for more pixels than a screen has."""
    import plotly.graph_objects as go

    sinogram = np.asarray(sinogram)
    step_a = -(-sinogram.shape[0] // SINOGRAM_MAX[0])
    step_c = -(-sinogram.shape[1] // SINOGRAM_MAX[1])
    fig = go.Figure(_heat(sinogram[::step_a, ::step_c], x=np.arange(0, sinogram.shape[1], step_c),
                          y=np.asarray(theta_deg, dtype=np.float32)[::step_a]))
    fig.add_vline(x=center, line={"color": "red", "dash": "dash"}, annotation_text=f"centre {center:.2f}")
    fig.update_layout(
        title="Sinogram of the middle row (-log transmission)",
        xaxis_title="detector column", yaxis_title="angle (degrees)",
    )
    return fig


def centre_figure(search: CentreSearch, center_pc: float | None = None) -> Any:
    """Vo's metric against candidate centre: coarse and fine searches."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_scatter(x=search.coarse_centers, y=search.coarse_metric, mode="lines+markers", name="coarse (1 px)")
    fig.add_scatter(x=search.fine_centers, y=search.fine_metric, mode="lines+markers", name="fine (0.25 px)", yaxis="y2")
    fig.add_vline(x=search.center, line={"color": "red"}, annotation_text=f"Vo {search.center:.2f}")
    if center_pc is not None:
        fig.add_vline(x=center_pc, line={"color": "green", "dash": "dot"},
                      annotation_text=f"0/180 {center_pc:.2f}", annotation_position="bottom right")
    fig.update_layout(
        title="Rotation-centre search (lower metric is better)",
        xaxis_title="centre (detector pixels)", yaxis_title="metric (coarse)",
        yaxis2={"title": "metric (fine)", "overlaying": "y", "side": "right"},
    )
    return fig
