"""Background (container/air) subtraction and spike removal for 1-D patterns I(Q)."""

from __future__ import annotations

import numpy as np

__all__ = ["auto_bgscale", "remove_spikes", "resample", "subtract_background"]


def resample(q_from: np.ndarray, y: np.ndarray, q_to: np.ndarray) -> np.ndarray:
    """Linear interpolation of y(q_from) onto q_to; NaN outside [q_from[0], q_from[-1]]."""
    q_from = np.asarray(q_from, float)
    y = np.asarray(y, float)
    good = np.isfinite(y)
    out = np.interp(q_to, q_from[good], y[good], left=np.nan, right=np.nan)
    return out


def auto_bgscale(
    intensity: np.ndarray,
    background: np.ndarray,
    support: float = 0.05,
    percentile: float = 0.5,
    cap: float = 1.0,
) -> float:
    """Largest background scale that keeps the corrected intensity non-negative.

    Parameters
    ----------
    intensity : ndarray of shape (N,)
        Sample pattern I_sample(Q).
    background : ndarray of shape (N,)
        Background pattern I_bg(Q) on the same Q grid (same geometry, mask and
        corrections).
    support : float
        Only Q where I_bg ≥ support × max(I_bg) enter (elsewhere the ratio is noise).
    percentile : float
        The scale is this low percentile of I_sample/I_bg (robust minimum against
        single noisy bins).
    cap : float
        Upper bound of the result (a container cannot scatter more than it did when
        measured alone, so the default is 1).

    Returns
    -------
    float
        s = min(cap, P_percentile(I_sample/I_bg)), ≥ 0.

    Notes
    -----
    Stated criterion: s is the largest scale for which I_sample - s·I_bg stays
    non-negative wherever the background matters. The sample's own scattering is
    positive, so the true scale is ≤ s: the result is an upper bound, exact when the
    sample scatters little somewhere in the background's Q range (e.g. the low-Q side
    of an amorphous container hump). When the sample has strong low-Q diffuse
    scattering give bgscale explicitly.

    Examples
    --------
    >>> q = np.linspace(1, 20, 200)
    >>> bg = np.exp(-q / 5)
    >>> auto_bgscale(0.7 * bg + np.exp(-((q - 10) ** 2)), bg)
    0.7
    """
    i = np.asarray(intensity, float)
    b = np.asarray(background, float)
    if i.shape != b.shape:
        raise ValueError(f"background: shape {b.shape} does not match the sample pattern {i.shape}")
    good = np.isfinite(i) & np.isfinite(b) & (b > 0)
    if not good.any():
        raise ValueError("background: no Q where both patterns are finite and the background > 0")
    good &= b >= support * b[good].max()
    ratio = i[good] / b[good]
    s = float(np.percentile(ratio, percentile))
    return float(np.clip(round(s, 6), 0.0, cap))


def subtract_background(intensity: np.ndarray, background: np.ndarray | None, scale: float) -> np.ndarray:
    """I_s(Q) = I_sample(Q) - scale·I_bg(Q) (arrays on one Q grid; background may be None)."""
    i = np.asarray(intensity, float)
    if background is None:
        return i.copy()
    b = np.asarray(background, float)
    if b.shape[-1] != i.shape[-1]:
        raise ValueError(f"background: length {b.shape[-1]} does not match the sample pattern {i.shape[-1]}")
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"bgscale = {scale}: must be a finite number >= 0 or 'auto'")
    return i - scale * b


def remove_spikes(intensity: np.ndarray, width: int = 7, threshold: float = 10.0) -> tuple[np.ndarray, int]:
    """Replace single-bin outliers (unmasked hot pixels) by a running median.

    Parameters
    ----------
    intensity : ndarray of shape (N,)
        Pattern I(Q).
    width : int
        Odd running-median window in bins.
    threshold : float
        Bin i is a spike when its excess over the higher neighbour,
        I_i - max(I_{i-1}, I_{i+1}), exceeds threshold × max(noise, rise, 0.05·|median_i|), where
        rise = max(I_{i-1}, I_{i+1}) - median_i is how far the neighbours themselves
        stand above the running median and noise is the local robust scatter
        1.4826·median|I - median| over 4·width + 1 bins.

    Returns
    -------
    cleaned : ndarray of shape (N,)
    n_spikes : int
        Number of bins replaced.

    Notes
    -----
    Scale-free: multiplying I by a constant flags the same bins. A spike one bin
    wide becomes a ripple across all r in G(r); a Bragg peak spans several bins, so
    its neighbours rise with it and it is kept.
    """
    from scipy.ndimage import median_filter

    y = np.asarray(intensity, float)
    finite = np.isfinite(y)
    if finite.sum() < width:
        return y.copy(), 0
    idx = np.arange(y.size)
    filled = np.where(finite, y, np.interp(idx, idx[finite], y[finite]))
    med = median_filter(filled, size=width, mode="nearest")
    dev = filled - med
    noise = 1.4826 * median_filter(np.abs(dev), size=4 * width + 1, mode="nearest")
    neighbour = np.maximum(np.r_[filled[1], filled[:-1]], np.r_[filled[1:], filled[-2]])
    excess = filled - neighbour
    rise = np.maximum(np.maximum(neighbour - med, noise), 0.05 * np.abs(med))
    spike = (excess > threshold * rise) & finite
    out = np.where(spike, med, y)
    return out, int(spike.sum())
