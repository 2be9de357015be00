"""Plotly figures: Stokes I image with the solar limb, peak dynamic spectrum, gains."""

from __future__ import annotations

import numpy as np

#: mean apparent radius of the photosphere, arcsec
SUN_RADIUS_ARCSEC = 960.0


def solar_image(image: np.ndarray, cell_arcsec: float, freq_hz: float, title: str = ""):
    """Heatmap of ``img[iy, ix]`` in arcsec from the Sun centre, east left, north up,
    with the limb drawn."""
    import plotly.graph_objects as go

    n = image.shape[0]
    x = -(np.arange(n) - n // 2) * cell_arcsec  # east offset (l), decreasing to the right
    y = (np.arange(n) - n // 2) * cell_arcsec
    t = np.linspace(0, 2 * np.pi, 361)
    fig = go.Figure([
        go.Heatmap(z=np.asarray(image, np.float32), x=x, y=y, colorscale="Inferno",
                   colorbar={"title": "flux/beam"}),
        go.Scatter(x=SUN_RADIUS_ARCSEC * np.cos(t), y=SUN_RADIUS_ARCSEC * np.sin(t),
                   mode="lines", line={"color": "white", "width": 1}, name="limb"),
    ])
    fig.update_layout(
        title=f"{title} ({freq_hz / 1e6:.1f} MHz)",
        xaxis={"title": "east offset (arcsec), east left", "autorange": "reversed",
               "scaleanchor": "y"},
        yaxis={"title": "north offset (arcsec)"},
        showlegend=False,
    )
    return fig


def dynamic_spectrum(times: list[str], freqs_hz: np.ndarray, peaks: np.ndarray):
    """Channel x time heatmap of the Stokes I image peak; ``peaks`` of shape (C, T)."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(z=peaks, x=times, y=np.asarray(freqs_hz) / 1e6,
                               colorscale="Viridis", colorbar={"title": "peak"}))
    fig.update_layout(title="Peak flux per channel and batch", xaxis={"title": "UTC"},
                      yaxis={"title": "frequency (MHz)"})
    return fig


def gain_figure(gains: np.ndarray):
    """Amplitude and phase of the calibration gains, antenna x (band, pol, channel)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    g = np.asarray(gains).reshape(-1, gains.shape[-1]).T  # (40, 8 * 16)
    labels = [f"b{c >> 1}{'LR'[c & 1]}c{k}" for c in range(gains.shape[0])
              for k in range(gains.shape[1])]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True,
                        subplot_titles=("gain amplitude", "gain phase (deg)"))
    fig.add_trace(go.Heatmap(z=np.abs(g), x=labels, colorscale="Viridis",
                             colorbar={"y": 0.78, "len": 0.45}), row=1, col=1)
    fig.add_trace(go.Heatmap(z=np.rad2deg(np.angle(g)), x=labels, colorscale="Twilight",
                             zmin=-180, zmax=180, colorbar={"y": 0.22, "len": 0.45}), row=2, col=1)
    fig.update_yaxes(title_text="antenna")
    fig.update_layout(title="Calibration gains per antenna")
    return fig
