"""Antenna gain calibration from a point calibrator at the phase centre.

The calibrator visibilities are ``V_ij = g_i conj(g_j) S_cal``. Gains are solved per
(band, polarisation, channel) by StefCal (Salvini & Wijnholds 2014, A&A 571, A97,
doi:10.1051/0004-6361/201424487) or by the leading eigenvector of the Hermitian
visibility matrix; the overall phase is not observable and is fixed by a reference
antenna.
"""

from __future__ import annotations

import numpy as np

from . import frames as F

METHODS = ("stefcal", "eigen")


def visibility_matrix(vis: np.ndarray, n_ant: int = F.N_ANTENNAS) -> np.ndarray:
    """Hermitian matrices ``M[..., i, j] = V_ij`` (i < j), conjugate below, zero diagonal.

    Parameters
    ----------
    vis : ndarray, shape (..., B)
        Baselines in ``numpy.triu_indices(n_ant, 1)`` order.

    Returns
    -------
    ndarray, shape (..., n_ant, n_ant)
    """
    i, j = np.triu_indices(n_ant, 1)
    m = np.zeros(vis.shape[:-1] + (n_ant, n_ant), np.complex128)
    m[..., i, j] = vis
    m[..., j, i] = np.conj(vis)
    return m


def solve_gains(
    vis: np.ndarray,
    flux: float,
    *,
    flagged: np.ndarray | None = None,
    method: str = "stefcal",
    n_iter: int = 100,
    tol: float = 1e-10,
    ref_antenna: int = 0,
) -> np.ndarray:
    """Solve antenna gains from calibrator visibilities.

    Parameters
    ----------
    vis : ndarray of complex, shape (..., 780)
        Calibrator visibilities (any leading shape, e.g. (8 codes, 16 channels)).
    flux : float
        Calibrator flux; the gains then convert counts to calibrator units.
    flagged : ndarray of bool, shape (..., 40) or (40,), optional
        Antennas to leave out; their gains are returned as 0.
    method : {"stefcal", "eigen"}
        Alternating least squares with damping, or the leading eigenvector of the
        visibility matrix (diagonal left out, then refined by 3 diagonal updates).
    n_iter : int
        StefCal iterations (at most).
    tol : float
        StefCal stops when the relative change of the gains falls below ``tol``.
    ref_antenna : int
        Antenna whose gain phase is set to zero (the first unflagged one if flagged).

    Returns
    -------
    ndarray of complex128, shape (..., 40)
        Gains ``g`` with ``V_ij ~= g_i conj(g_j) flux``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    vis = np.asarray(vis, dtype=np.complex128)
    m = visibility_matrix(vis) / flux
    n_ant = m.shape[-1]
    keep = np.ones(vis.shape[:-1] + (n_ant,), bool)
    if flagged is not None:
        keep &= ~np.broadcast_to(np.asarray(flagged, bool), keep.shape)
    m = m * keep[..., :, None] * keep[..., None, :]
    if method == "eigen":
        g = _eigen(m, keep)
    else:
        g = _stefcal(m, keep, n_iter, tol)
    g = g * keep
    ref = np.where(keep[..., ref_antenna], ref_antenna, np.argmax(keep, axis=-1))
    gref = np.take_along_axis(g, ref[..., None], axis=-1)
    phase = np.where(np.abs(gref) > 0, np.conj(gref) / np.maximum(np.abs(gref), 1e-300), 1.0)
    return g * phase


def _stefcal(m, keep, n_iter, tol):
    g = np.sqrt(np.maximum(np.abs(m).sum(-1) / np.maximum(keep.sum(-1, keepdims=True) - 1, 1),
                           0)).astype(np.complex128) * keep
    for it in range(n_iter):
        num = np.einsum("...ij,...j->...i", m, g)
        power = np.abs(g) ** 2
        den = power.sum(-1, keepdims=True) - power
        g_new = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        if it % 2 == 1:
            g_new = 0.5 * (g_new + g)
        change = np.linalg.norm(g_new - g) / max(np.linalg.norm(g_new), 1e-300)
        g = g_new
        if it > 2 and change < tol:
            break
    return g


def _eigen(m, keep):
    m = m.copy()
    for _ in range(4):
        w, v = np.linalg.eigh(m)
        g = v[..., :, -1] * np.sqrt(np.maximum(w[..., -1:], 0))
        idx = np.arange(m.shape[-1])
        m[..., idx, idx] = np.abs(g) ** 2 * keep  # fill the unobserved diagonal
    return g


def apply_gains(vis: np.ndarray, gains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct visibilities: ``V_ij / (g_i conj(g_j))``.

    Parameters
    ----------
    vis : ndarray, shape (..., 780)
    gains : ndarray, shape (..., 40)

    Returns
    -------
    corrected : ndarray, shape (..., 780)
        Zero where a gain is zero.
    valid : ndarray of bool, shape (..., 780)
        False for baselines with a zero (flagged) gain.
    """
    gg = gains[..., F.ANT1] * np.conj(gains[..., F.ANT2])
    valid = np.abs(gg) > 0
    return np.where(valid, vis / np.where(valid, gg, 1.0), 0.0), valid
