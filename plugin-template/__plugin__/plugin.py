"""$title: the glue between hisci and the method in algorithm.py.

``run(ctx)`` is the entry point named in meta.json (``"entry": "plugin:run"``). It reads
the inputs, calls the pure function, saves the outputs and returns a summary, which hisci
keeps in result.json. The same ``run`` works in ``hicli run``, a job worker and
``hicli preview``.
"""

from __future__ import annotations

import numpy

from hisci import InputError, RunContext

from .algorithm import find_peak


def run(ctx: RunContext) -> dict:
    """Find the strongest peak of the spectrum given as input ``spectrum``.

    Inputs (ui.json ``data``)
        spectrum: a text file with two columns, x and y (a header line is allowed).
    Parameters (data.json ``params.config.extra``)
        window, subtract_baseline, polarity, title: see README.md.
    Outputs (in ``ctx.output_dir``)
        result.json (the returned summary), corrected.npy (x, smoothed, baseline, shape
        (3, N)), report.txt and the figure ``spectrum`` (plotly JSON and HTML).
    """
    x, y = _read_spectrum(ctx.input("spectrum"))
    extra = ctx.params["extra"]
    ctx.progress(0.2, f"read {x.size} samples")
    with ctx.field("/extra"):  # a ValueError names the parameter; it becomes an InputError there
        peak = find_peak(x, y, window=extra["window"], subtract_baseline=extra["subtract_baseline"],
                         polarity=extra["polarity"], xp=ctx.xp)
    ctx.progress(0.7, "saving outputs")
    ctx.save_array("corrected.npy", numpy.vstack([numpy.sort(x), peak.smoothed, peak.baseline]),
                   {"rows": ["x", "smoothed", "baseline"]})
    (ctx.output_dir / "report.txt").write_text(_report(peak, x.size), encoding="utf-8")
    ctx.save_figure(_figure(x, y, peak, extra["title"]), "spectrum")
    return {"position": peak.position, "height": peak.height, "fwhm": peak.fwhm,
            "area": peak.area, "samples": int(x.size)}


def _read_spectrum(path) -> tuple[numpy.ndarray, numpy.ndarray]:
    """x and y from a text file of two (or more) columns; header lines and '#' comments skipped."""
    head = path.read_text(encoding="utf-8", errors="replace")[:1000]
    delimiter = "," if "," in head else None
    try:
        table = numpy.genfromtxt(path, delimiter=delimiter, comments="#", invalid_raise=True, ndmin=2)
    except ValueError as exc:
        raise InputError(f"{path.name}: cannot read numeric columns: {exc}", pointer="/data/spectrum") from None
    table = table[~numpy.isnan(table[:, :2]).any(axis=1)] if table.shape[1] >= 2 else table
    if table.shape[1] < 2 or len(table) < 3:
        raise InputError(f"{path.name}: expected at least 3 rows of two columns (x and y)",
                         pointer="/data/spectrum",
                         hint="save the spectrum as a tab-, space- or comma-separated text file")
    return table[:, 0], table[:, 1]


def _report(peak, samples: int) -> str:
    return (f"samples   {samples}\n"
            f"position  {peak.position:.4f}\n"
            f"height    {peak.height:.4f}\n"
            f"fwhm      {peak.fwhm:.4f}\n"
            f"area      {peak.area:.4f}\n")


def _figure(x, y, peak, title: str):
    import plotly.graph_objects as go

    order = numpy.argsort(x, kind="stable")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x[order], y=y[order], mode="markers", name="data", marker={"size": 4}))
    fig.add_trace(go.Scatter(x=x[order], y=peak.smoothed, mode="lines", name="smoothed"))
    fig.add_trace(go.Scatter(x=x[order], y=peak.baseline, mode="lines", name="baseline",
                             line={"dash": "dot"}))
    fig.add_vline(x=peak.position, line_dash="dash", annotation_text=f"{peak.position:.3f}")
    fig.update_layout(title=title or None, xaxis_title="x", yaxis_title="y", template="plotly_white")
    return fig
