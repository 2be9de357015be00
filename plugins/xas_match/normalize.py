"""XAS normalisation (Athena / Larch ``pre_edge`` definitions), vectorised over spectra.

All spectra of one call share one energy grid, so a time series of thousands of scans
is normalised with a handful of array operations; spectra on different grids are
normalised one call per grid (:func:`normalize`).

Definitions follow ``larch.xafs.pre_edge`` (xraylarch 2026.3):

* E0 is the energy of the maximum of dmu/dE: first on the raw derivative, then on a
  Lorentzian-smoothed derivative within 75 points of that first estimate; a point only
  counts when both neighbours are also in the top 40 % of the derivative range (this
  rejects single-point glitches).
* the pre-edge line is fitted to mu in [E0+pre1, E0+pre2] (defaults: pre1 = first energy
  step below E0 rounded to 5 eV, pre2 = pre1/2);
* the post-edge polynomial of order ``nnorm`` is fitted to mu - pre_edge in
  [E0+norm1, E0+norm2] (defaults: norm2 = end of scan, norm1 = min(25, norm2/15),
  nnorm = 2 for a range > 300 eV, 1 for > 30 eV, else 0);
* edge_step = post_edge(E0) - pre_edge(E0); norm = (mu - pre_edge) / edge_step;
  flat = norm with the post-edge curvature removed above E0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

__all__ = ["Normalized", "find_e0", "normalize", "normalize_batch"]


@dataclass(frozen=True)
class Normalized:
    """Result of :func:`normalize_batch` for ``m`` spectra on one grid of ``n`` energies.

    Attributes
    ----------
    energy : ndarray of shape (n,)
        Energies in eV, strictly increasing.
    mu : ndarray of shape (m, n)
        Input absorption.
    e0 : ndarray of shape (m,)
        Edge energies in eV (always one of ``energy``).
    edge_step : ndarray of shape (m,)
        Edge jumps in units of ``mu``.
    norm, flat, pre_edge, post_edge : ndarray of shape (m, n)
        Normalised and flattened spectra, pre-edge line and post-edge curve (units of mu).
    pre1, pre2, norm1, norm2 : ndarray of shape (m,)
        Fit ranges used, in eV relative to E0.
    nnorm : ndarray of shape (m,)
        Post-edge polynomial order used.
    """

    energy: np.ndarray
    mu: np.ndarray
    e0: np.ndarray
    edge_step: np.ndarray
    norm: np.ndarray
    flat: np.ndarray
    pre_edge: np.ndarray
    post_edge: np.ndarray
    pre1: np.ndarray
    pre2: np.ndarray
    norm1: np.ndarray
    norm2: np.ndarray
    nnorm: np.ndarray


def _check_grid(energy: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    energy = np.asarray(energy, dtype=float)
    mu = np.atleast_2d(np.asarray(mu, dtype=float))
    if energy.ndim != 1 or mu.shape[1] != energy.size:
        raise ValueError(
            f"energy must be 1-D with one value per column of mu; got energy {energy.shape}, "
            f"mu {mu.shape}"
        )
    if energy.size < 8:
        raise ValueError(f"a spectrum needs at least 8 energy points; got {energy.size}")
    if np.any(np.diff(energy) <= 0):
        i = int(np.argmax(np.diff(energy) <= 0))
        raise ValueError(
            f"energy must increase strictly; it does not at index {i + 1} "
            f"({energy[i]:.3f} -> {energy[i + 1]:.3f} eV). Sort the scan or remove repeats."
        )
    if not np.all(np.isfinite(mu)):
        raise ValueError("mu contains NaN or infinite values; remove those points first")
    return energy, mu


def _energy_step(energy: np.ndarray, frac_ignore: float = 0.01, nave: int = 10) -> float:
    """Typical energy step (larch ``find_energy_step``): mean of the smallest steps."""
    nskip = int(frac_ignore * energy.size)
    ediff = np.sort(np.diff(energy[nskip : energy.size - nskip] if nskip else energy))
    return float(ediff[nskip : nskip + nave].mean())


def _lorentzian_smooth(energy: np.ndarray, y: np.ndarray, step: float) -> np.ndarray:
    """Smooth rows of ``y`` with a Lorentzian of half width ``step`` (larch ``smooth``)."""
    npad = 5
    x0 = np.arange(
        step * int((energy[0] - npad * step) / step),
        step * int((energy[-1] + npad * step) / step) + 0.1 * step,
        step,
    )
    if x0.size > 50 * energy.size:
        x0 = np.linspace(x0[0], x0[-1], 50 * energy.size)
        step = x0[1] - x0[0]
    idx = np.clip(np.searchsorted(energy, x0) - 1, 0, energy.size - 2)
    t = np.clip((x0 - energy[idx]) / (energy[idx + 1] - energy[idx]), 0.0, 1.0)
    y0 = y[:, idx] * (1 - t) + y[:, idx + 1] * t
    half = x0.size - 1  # the whole range, reflected at both ends, as larch does
    wx = np.arange(-half, half + 1, dtype=float)
    kernel = 1.0 / (1.0 + wx**2)
    padded = np.pad(y0, ((0, 0), (half, half)), mode="reflect")
    y2 = fftconvolve(padded, (kernel / kernel.sum())[None, :], mode="valid", axes=1)
    j = np.clip(np.searchsorted(x0, energy) - 1, 0, x0.size - 2)
    s = np.clip((energy - x0[j]) / (x0[j + 1] - x0[j]), 0.0, 1.0)
    return y2[:, j] * (1 - s) + y2[:, j + 1] * s


def _deriv_peak(dmu: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Index of the derivative maximum inside [lo, hi) per row, glitch-protected as larch."""
    _m, n = dmu.shape
    i = np.arange(n)
    inside = (i >= lo[:, None]) & (i < hi[:, None])
    nmin = np.maximum(3, ((hi - lo) * 0.02).astype(int))
    core = (i >= (lo + nmin)[:, None]) & (i < (hi - nmin)[:, None])
    dmu = np.where(np.isfinite(dmu), dmu, -1.0)
    dmin = np.where(core, dmu, np.inf).min(axis=1)
    dptp = np.maximum(1e-10, np.where(core, dmu, -np.inf).max(axis=1) - dmin)
    scaled = (dmu - dmin[:, None]) / dptp[:, None]
    dhigh = 0.60 if n > 20 else 0.30
    high = (scaled > dhigh) & inside
    ok = high & np.roll(high, 1, axis=1) & np.roll(high, -1, axis=1)
    ok[:, 0] = ok[:, -1] = False
    ok &= (i >= (lo + nmin)[:, None]) & (i <= (hi - nmin)[:, None])
    cand = np.where(ok, scaled, -np.inf)
    best = cand.argmax(axis=1)
    fallback = np.where(core, scaled, -np.inf).argmax(axis=1)
    return np.where(np.isfinite(cand.max(axis=1)), best, fallback)


def find_e0(energy: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Edge energy E0 of each spectrum: maximum of the (smoothed) derivative.

    Parameters
    ----------
    energy : ndarray of shape (n,)
        Energies in eV, strictly increasing.
    mu : ndarray of shape (n,) or (m, n)
        Absorption (any units).

    Returns
    -------
    ndarray of shape (m,)
        E0 in eV, each one of ``energy`` (as larch's ``find_e0``).

    Examples
    --------
    >>> e = np.linspace(6500, 6600, 201)
    >>> float(find_e0(e, np.arctan((e - 6539.0) / 2.0))[0])
    6539.0
    """
    energy, mu = _check_grid(energy, mu)
    m, n = mu.shape
    dmu = np.gradient(mu, axis=1) / np.gradient(energy)
    zeros = np.zeros(m, dtype=int)
    ie0 = _deriv_peak(dmu, zeros, zeros + n)
    e1 = energy[ie0]
    istart = np.maximum(3, ie0 - 75)
    istop = np.minimum(ie0 + 75, n - 3)
    early = ie0 < 0.05 * n
    e1 = np.where(early, energy.mean(), e1)
    istart = np.where(early, np.maximum(3, ie0 - 20), istart)
    istop = np.where(early, n - 3, istop)
    estep1 = _energy_step(energy)
    estep = 0.5 * (max(0.01, min(1.0, estep1)) + np.clip(e1 / 25000.0, 0.01, 1.0))
    # larch smooths only the window around the first estimate; smooth the union of windows
    lo, hi = int(istart.min()), int(istop.max())
    smooth = dmu.copy()
    for step in np.unique(estep):  # one smoothing width per distinct first estimate
        rows = np.flatnonzero(estep == step)
        if rows.size > hi - lo:  # many spectra: smooth the unit vectors once, then a GEMM
            op = _lorentzian_smooth(energy[lo:hi], np.eye(hi - lo), float(step))
            smooth[rows, lo:hi] = dmu[rows, lo:hi] @ op
        else:
            smooth[rows, lo:hi] = _lorentzian_smooth(energy[lo:hi], dmu[rows, lo:hi],
                                                     float(step))
    ix = _deriv_peak(smooth, istart, istop)
    ix = np.where(ix - istart < 1, istart + 2, ix)
    return energy[ix]


def _index_of(energy: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Index of the last energy at or below ``value`` (0 below the grid), per value."""
    return np.maximum(np.searchsorted(energy, value, side="right") - 1, 0)


def _index_nearest(energy: np.ndarray, value: np.ndarray) -> np.ndarray:
    return np.abs(energy[None, :] - np.asarray(value)[:, None]).argmin(axis=1)


def _masked_polyfit(
    x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, deg: np.ndarray
) -> np.ndarray:
    """Least-squares polynomials fitted to y[r, lo[r]:hi[r]]; coefficients in powers of x.

    Returns ndarray of shape (m, 3): c0 + c1 x + c2 x**2 (unused orders are 0).
    """
    m, n = y.shape
    i = np.arange(n)
    mask = ((i >= lo[:, None]) & (i < hi[:, None])).astype(float)
    coefs = np.zeros((m, 3))
    for d in np.unique(deg):
        rows = np.flatnonzero(deg == d)
        vander = x[:, None] ** np.arange(d + 1)[None, :]
        w = mask[rows]
        gram = np.einsum("ri,ij,ik->rjk", w, vander, vander)
        rhs = np.einsum("ri,ij,ri->rj", w, vander, y[rows])
        coefs[rows, : d + 1] = (np.linalg.pinv(gram) @ rhs[..., None])[..., 0]
    return coefs


def _round_to(value: np.ndarray, base: np.ndarray) -> np.ndarray:
    return base * np.round(value / base)


def normalize_batch(
    energy: np.ndarray,
    mu: np.ndarray,
    e0: float | np.ndarray | None = None,
    pre1: float | None = None,
    pre2: float | None = None,
    norm1: float | None = None,
    norm2: float | None = None,
    nnorm: int | None = None,
) -> Normalized:
    """Pre-edge subtraction and normalisation of ``m`` spectra sharing one energy grid.

    Parameters
    ----------
    energy : ndarray of shape (n,)
        Energies in eV, strictly increasing.
    mu : ndarray of shape (n,) or (m, n)
        Absorption mu(E).
    e0 : float or ndarray of shape (m,), optional
        Edge energies in eV; found with :func:`find_e0` when omitted.
    pre1, pre2 : float, optional
        Pre-edge fit range in eV relative to E0 (larch defaults when omitted).
    norm1, norm2 : float, optional
        Post-edge fit range in eV relative to E0 (larch defaults when omitted).
    nnorm : {0, 1, 2}, optional
        Post-edge polynomial order (larch default from the range when omitted).

    Returns
    -------
    Normalized

    Notes
    -----
    Reproduces ``larch.xafs.pre_edge`` (npre = 1, nvict = 0). Fits use per-spectrum masks
    on the shared grid, so all spectra are solved together as a stack of small normal
    equations.
    """
    energy, mu = _check_grid(energy, mu)
    m, n = mu.shape
    if e0 is None:
        e0v = find_e0(energy, mu)
    else:
        e0v = np.broadcast_to(np.asarray(e0, dtype=float), (m,)).copy()
        if np.any((e0v < energy[1]) | (e0v > energy[-2])):
            e0v = np.where((e0v < energy[1]) | (e0v > energy[-2]), find_e0(energy, mu), e0v)
    ie0 = _index_nearest(energy, e0v)
    emin, emax = energy[0], energy[-1]

    if pre1 is None:
        p1 = np.where(ie0 > 20, _round_to(energy[1] - e0v, 5.0), _round_to(energy[1] - e0v, 2.0))
    else:
        p1 = np.full(m, float(pre1))
    p1 = np.maximum(p1, emin - e0v)
    p2 = 0.5 * p1 if pre2 is None else np.full(m, float(pre2))
    p1, p2 = np.minimum(p1, p2), np.maximum(p1, p2)

    if norm2 is None:
        n2 = _round_to(emax - e0v, 5.0)
    else:
        n2 = np.full(m, float(norm2))
        n2 = np.where(n2 < 0, emax - e0v - n2, n2)
    n2 = np.minimum(n2, emax - e0v)
    n1 = np.minimum(25.0, 5.0 * np.round(n2 / 15.0)) if norm1 is None else np.full(m, float(norm1))
    n1, n2 = np.minimum(n1, n2), np.maximum(n1, n2)
    n1 = np.minimum(n1, n2 - 2)
    if nnorm is None:
        order = np.where(n2 - n1 < 30, 0, np.where(n2 - n1 < 300, 1, 2))
    else:
        order = np.full(m, int(np.clip(nnorm, 0, 2)))

    # centred, scaled abscissa keeps the normal equations well conditioned
    ec, es = 0.5 * (emin + emax), max(0.5 * (emax - emin), 1.0)
    x = (energy - ec) / es

    lo = _index_of(energy, p1 + e0v)
    hi = _index_nearest(energy, p2 + e0v)
    ilo = _index_of(energy, p1 + e0v)
    ihi = _index_of(energy, p2 + e0v)
    const = (ihi - ilo) < 3
    hi = np.where(~const & (hi - lo < 2), np.minimum(n, lo + 2), hi)
    hi = np.where(const & (hi == lo), hi + 1, hi)
    pre_c = _masked_polyfit(x, mu, lo, hi, np.where(const, 0, 1))
    pre_edge = pre_c[:, :1] + pre_c[:, 1:2] * x

    lo = _index_of(energy, n1 + e0v)
    hi = _index_nearest(energy, n2 + e0v)
    lo = np.minimum(lo, n - 3)
    short = hi - lo < 2
    lo = np.where(short, lo - 2, lo)
    order = np.where(short, 0, np.where(hi - lo < 5, np.minimum(order, 1), order))
    post_c = _masked_polyfit(x, mu - pre_edge, lo, hi, order)
    poly = post_c[:, :1] + post_c[:, 1:2] * x + post_c[:, 2:3] * x**2
    post_edge = pre_edge + poly
    rows = np.arange(m)
    step = np.maximum(1e-12, np.abs(poly[rows, ie0]))
    norm = (mu - pre_edge) / step[:, None]
    resid = poly / step[:, None]
    flat = norm - resid + resid[rows, ie0][:, None]
    below = np.arange(n)[None, :] < ie0[:, None]
    flat = np.where(below, norm, flat)
    return Normalized(
        energy=energy, mu=mu, e0=e0v, edge_step=step, norm=norm, flat=flat,
        pre_edge=pre_edge, post_edge=post_edge, pre1=p1, pre2=p2, norm1=n1, norm2=n2,
        nnorm=order,
    )


def normalize(energy: np.ndarray, mu: np.ndarray, **kwargs: float | None) -> Normalized:
    """Normalise one spectrum (1-D ``mu``); see :func:`normalize_batch` for the parameters."""
    mu = np.asarray(mu, dtype=float)
    if mu.ndim != 1:
        raise ValueError(f"normalize takes one spectrum (1-D mu); got shape {mu.shape}")
    return normalize_batch(energy, mu[None, :], **kwargs)
