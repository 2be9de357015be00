"""Shared helpers of the ct_recon tests: analytic phantom scans (cached) and error metrics.

All test data come from :mod:`hisci.builtin_plugins.ct_recon.phantom` (exact line integrals of
ellipses at detector-bin centres; no pixel projector, so no inverse crime).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from hisci.builtin_plugins.ct_recon import phantom, preprocess


def disc(n: int, ratio: float = 1.0) -> np.ndarray:
    c = (n - 1) / 2.0
    r = np.arange(n) - c
    return r[:, None] ** 2 + r[None, :] ** 2 <= (ratio * n / 2.0) ** 2


def rmse(image: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Raw RMSE over the mask (no scale or offset fitted)."""
    return float(np.sqrt(np.mean((np.asarray(image, np.float64) - truth)[mask] ** 2)))


@cache
def noisy_256(center_offset: float = 0.5, flat_counts: float = 2.0e4, seed: int = 1) -> dict:
    """The accuracy case of issue 11: 256 columns, 360 angles over [0, 180), Poisson noise.

    The rotation axis is at detector column ``127.5 + center_offset``; the default 128 = n/2 is
    where skimage's ``iradon`` assumes it, so skimage is compared on its own geometry: its truth
    has the axis at image pixel 128, ours at the image centre 127.5.
    """
    n, n_ang = 256, 360
    theta_deg = np.arange(n_ang) * 180.0 / n_ang
    theta = np.deg2rad(theta_deg)
    ell = phantom.asymmetric_ellipses(n)
    center = (n - 1) / 2.0 + center_offset
    exact = phantom.line_integrals(ell, theta, n, center)
    proj, flats, darks = phantom.simulate_counts(exact, 1, flat_counts=flat_counts, rng=seed)
    sino = preprocess.minus_log(preprocess.normalize(proj, flats, darks))[:, 0, :]
    return {
        "n": n,
        "theta_deg": theta_deg,
        "theta": theta,
        "center": center,
        "exact": exact,
        "sino": sino.astype(np.float32),
        "truth": phantom.rasterize(ell, n),
        "truth_skimage": phantom.rasterize(ell, n, center=center),
        "k": 4.0 / n,
        "ellipses": ell,
    }
