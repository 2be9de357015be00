"""Shared helpers for the muser_imaging science tests: simulated datasets and source checks.

Every dataset is made by the plugin's own generator (simulate.py), which follows
shared/research/muser.md: point sources at known (l, m), visibilities by direct sum.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hisci.builtin_plugins.muser_imaging import dataset as D
from hisci.builtin_plugins.muser_imaging import pipeline as P
from hisci.builtin_plugins.muser_imaging import simulate as S

#: sources on pixel centres of a 5" grid (so peaks sit on pixels at cell = 5")
SOURCES = (
    S.PointSource(-400.0, 250.0, 40.0, 0.3),
    S.PointSource(600.0, -350.0, 20.0, -0.2),
    S.PointSource(150.0, 700.0, 10.0, 0.0),
)
CELL = 5.0
NPIX = 512


def make_dataset(folder: Path, **kw) -> S.Truth:
    kw.setdefault("sources", SOURCES)
    return S.simulate_dataset(folder, **kw)


def open_batches(folder: Path):
    """(dataset, calibration, batches, dropped) of a dataset folder."""
    ds = D.open_dataset(folder)
    cal = P.solve_calibration(D.read_frames(ds.files["calibrator"]).frames, ds.calibrator_flux)
    rep = D.read_frames(ds.files["target"])
    batches = D.group_batches(rep.frames, D.parse_utc(ds.observation["start_utc"]), ds.cadence_s)
    return ds, cal, batches, rep.dropped


def expected_flux(src: S.PointSource, pol: str, freq_hz: float) -> float:
    if pol == "I":
        return float(src.flux * (freq_hz / 1e9) ** src.spectral_index)
    return float(src.flux_at(np.array([freq_hz]), 0 if pol == "L" else 1)[0])


def subpixel_peak(img: np.ndarray, ix0: float, iy0: float, radius: int = 4):
    """Brightest pixel within ``radius`` of (ix0, iy0), refined by a parabola per axis.

    Returns (ix, iy, peak) with fractional pixel coordinates.
    """
    n = img.shape[0]
    x0, y0 = round(ix0), round(iy0)
    ys, xs = slice(max(y0 - radius, 1), min(y0 + radius + 1, n - 1)), slice(
        max(x0 - radius, 1), min(x0 + radius + 1, n - 1))
    sub = img[ys, xs]
    jy, jx = np.unravel_index(np.nanargmax(sub), sub.shape)
    iy, ix = jy + ys.start, jx + xs.start

    def parabola(a, b, c):
        den = a - 2 * b + c
        return 0.0 if den == 0 else 0.5 * (a - c) / den

    a, b, c = (float(v) for v in img[iy, ix - 1:ix + 2])
    d, e = float(img[iy - 1, ix]), float(img[iy + 1, ix])
    fx, fy = parabola(a, b, c), parabola(d, b, e)
    # peak of the two parabolas (the flux of a point source between pixel centres)
    peak = b - 0.25 * (a - c) * fx - 0.25 * (d - e) * fy
    return ix + fx, iy + fy, peak


def predicted_pixel(src: S.PointSource, npix: int, cell: float):
    return npix / 2 - src.l_arcsec / cell, npix / 2 + src.m_arcsec / cell


def source_check(img, sources, npix, cell, pol, freq_hz, flux_tol, pos_tol=0.5):
    """Positions within ``pos_tol`` pixels and flux ratios (to the brightest) within
    ``flux_tol``. Returns (ok, details)."""
    found = []
    for s in sources:
        px, py = predicted_pixel(s, npix, cell)
        ix, iy, peak = subpixel_peak(img, px, py, radius=max(4, int(80.0 / cell)))
        found.append((ix - px, iy - py, peak, expected_flux(s, pol, freq_hz)))
    ok = all(abs(dx) <= pos_tol and abs(dy) <= pos_tol for dx, dy, _, _ in found)
    ref_meas, ref_true = found[0][2], found[0][3]
    for _, _, peak, true in found[1:]:
        ok &= abs((peak / ref_meas) / (true / ref_true) - 1) <= flux_tol
    ok &= abs(ref_meas / ref_true - 1) <= flux_tol
    return bool(ok), found
