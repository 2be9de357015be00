"""Rotation-centre finding: Vo's Fourier metric (coarse then fine) and 0/180 cross-correlation.

Centres are in detector pixels, pixel ``k`` centred at ``k`` (so a centred axis on an
``n``-column detector is ``(n - 1) / 2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["CentreSearch", "find_center_pc", "find_center_vo", "vo_metric"]


@dataclass
class CentreSearch:
    """Result of :func:`find_center_vo`: the centre and the metric curves (for plotting)."""

    center: float
    coarse_centers: np.ndarray
    coarse_metric: np.ndarray
    fine_centers: np.ndarray
    fine_metric: np.ndarray


def _double_wedge_mask(height: int, width: int, radius: float, drop: int) -> np.ndarray:
    # Vo 2014 eq. 3: ones outside the double wedge |u| <= |v| * r (in normalized units)
    du = 1.0 / width
    dv = (height - 1.0) / (height * 2.0 * np.pi)
    yc, xc = int(np.ceil((height - 1) / 2.0)), int(np.ceil((width - 1) / 2.0))
    mask = np.zeros((height, width), dtype=np.float32)
    for i in range(height):
        num = int(np.ceil(((i - yc) * dv / radius) / du))
        p1, p2 = np.clip(np.sort((-num + xc, num + xc)), 0, width - 1)
        mask[i, p1 : p2 + 1] = 1.0
    mask[yc - drop : yc + drop + 1, :] = 0.0
    mask[:, xc - 1 : xc + 2] = 0.0
    return mask


def vo_metric(sino_180: np.ndarray, centers: np.ndarray, ratio: float = 0.5) -> np.ndarray:
    """Vo's metric for each candidate centre (lower is better).

    The 180-degree sinogram and its left-right flip, shifted so that the candidate axis maps
    onto itself, are stacked into a 360-degree sinogram; for the true centre its 2-D Fourier
    energy outside the double wedge ``|u| <= |v| r`` is smallest.

    Parameters
    ----------
    sino_180 : ndarray of shape (n_angles, n_det)
        Sinogram over [0, 180) degrees.
    centers : ndarray of shape (n_candidates,)
    ratio : float
        Object width as a fraction of the detector width.

    Returns
    -------
    ndarray of shape (n_candidates,)
    """
    nrow, ncol = sino_180.shape
    flip = np.fliplr(sino_180)
    comp = np.flipud(sino_180)
    drop = min(20, int(0.05 * 2 * nrow))
    mask = _double_wedge_mask(2 * nrow, ncol, 0.5 * ratio * ncol, drop)
    out = np.empty(len(centers))
    for i, cor in enumerate(centers):
        shift = 2.0 * (cor - (ncol - 1.0) / 2.0)
        if shift == np.floor(shift):
            s = int(shift)
            shifted = np.roll(flip, s, axis=1)
            if s >= 0:
                shifted[:, :s] = comp[:, :s]
            else:
                shifted[:, s:] = comp[:, s:]
        else:
            shifted = ndimage.shift(flip, (0, shift), order=3, prefilter=True)
            if shift >= 0:
                s = int(np.ceil(shift))
                shifted[:, :s] = comp[:, :s]
            else:
                s = int(np.floor(shift))
                shifted[:, s:] = comp[:, s:]
        mat = np.vstack((sino_180, shifted))
        out[i] = np.mean(np.abs(np.fft.fftshift(np.fft.fft2(mat))) * mask)
    return out


def find_center_vo(
    sino_180: np.ndarray,
    start: float | None = None,
    stop: float | None = None,
    step: float = 0.25,
    radius: float = 2.0,
    ratio: float = 0.5,
) -> CentreSearch:
    """Rotation centre by Vo's Fourier metric: integer steps over [start, stop], then ``step``
    sub-pixel steps within ``radius`` of the coarse minimum. Sinograms wider than 1280 columns
    (or longer than 1800 angles) are block-averaged for the coarse search.

    Parameters
    ----------
    sino_180 : ndarray of shape (n_angles, n_det)
        Sinogram (line integrals) over [0, 180) degrees.
    start, stop : float, optional
        Coarse search range; default the middle eighth either side, ``n/2 -+ n/8``.
    step : float
        Fine step in pixels (0.25 gives quarter-pixel accuracy).
    radius : float
        Half-width of the fine search.
    ratio : float
        Object width / detector width.

    Returns
    -------
    CentreSearch

    References
    ----------
    N. T. Vo, M. Drakopoulos, R. C. Atwood, C. Reinhard, "Reliable method for calculating the
    center of rotation in parallel-beam tomography", Opt. Express 22, 19078 (2014),
    doi:10.1364/OE.22.019078 (algotom's ``find_center_vo`` follows the same steps).
    """
    sino = np.asarray(sino_180, dtype=np.float32)
    nrow, ncol = sino.shape
    start = ncol / 2.0 - ncol / 8.0 if start is None else start
    stop = ncol / 2.0 + ncol / 8.0 if stop is None else stop
    start_i = int(np.clip(np.floor(start), 0, ncol - 1))
    stop_i = int(np.clip(np.ceil(stop), start_i, ncol - 1))
    smooth = ndimage.gaussian_filter(sino, (3, 1), mode="reflect")
    # wide or long sinograms: coarse search on a block-averaged copy (as algotom does)
    dc = max(1, ncol // 640)
    dr = max(1, nrow // 900)
    if dc > 1 or dr > 1:
        small = smooth[: nrow // dr * dr, : ncol // dc * dc]
        small = small.reshape(nrow // dr, dr, ncol // dc, dc).mean(axis=(1, 3))
        cand = np.arange(int(np.floor(start_i / dc)), int(np.ceil(stop_i / dc)) + 1, dtype=np.float64)
        metric = vo_metric(small, cand, ratio)
        coarse = dc * cand + (dc - 1) / 2.0  # centre of each averaged block, full-width pixels
        radius = max(radius, float(dc))
    else:
        coarse = np.arange(start_i, stop_i + 1, dtype=np.float64)
        metric = vo_metric(smooth, coarse, ratio)
    coarse_metric = metric
    best = coarse[int(np.argmin(coarse_metric))]
    fine = np.clip(best + np.arange(-radius, radius + step / 2, step), 0.0, ncol - 1.0)
    fine_metric = vo_metric(ndimage.gaussian_filter(sino, (2, 2), mode="reflect"), fine, ratio)
    center = float(fine[int(np.argmin(fine_metric))])
    return CentreSearch(center, coarse, coarse_metric, fine, fine_metric)


def find_center_pc(proj_0: np.ndarray, proj_180: np.ndarray, upsample: int = 20) -> float:
    """Rotation centre from a projection and the one 180 degrees later (cross-correlation).

    The 180-degree projection is mirrored left-right; its shift ``d`` against the 0-degree one
    (sub-pixel, by a parabola through the correlation peak after ``upsample``-fold Fourier
    interpolation) gives ``center = (n - 1) / 2 + d / 2``.

    Parameters
    ----------
    proj_0, proj_180 : ndarray of shape (n_rows, n_det) or (n_det,)
        Line-integral (``-log``) projections at theta and theta + 180 degrees.

    Returns
    -------
    float
        Centre in detector pixels.
    """
    a = np.atleast_2d(np.asarray(proj_0, dtype=np.float64))
    b = np.atleast_2d(np.asarray(proj_180, dtype=np.float64))[:, ::-1]
    if a.shape != b.shape:
        raise ValueError(f"projections differ in shape: {a.shape} vs {b.shape}")
    n = a.shape[-1]
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    m = 2 * n
    fa = np.fft.rfft(a, m, axis=-1)
    fb = np.fft.rfft(b, m, axis=-1)
    cross = (fa * np.conj(fb)).sum(axis=0)
    corr = np.fft.irfft(cross, m * upsample) * upsample
    corr = np.fft.fftshift(corr)
    k = int(np.argmax(corr))
    if 0 < k < corr.size - 1:
        y0, y1, y2 = corr[k - 1], corr[k], corr[k + 1]
        denom = y0 - 2 * y1 + y2
        k = k + (0.5 * (y0 - y2) / denom if denom != 0 else 0.0)
    shift = (k - corr.size / 2) / upsample  # a(x) ~ b(x - shift)
    return float((n - 1) / 2.0 + shift / 2.0)
