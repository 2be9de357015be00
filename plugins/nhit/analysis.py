"""Physics checks of a trigger run: efficiency against the truth, noise rate vs Poisson.

See nhit.md sections 5 and 6.
"""

from __future__ import annotations

import math

import numpy as np

from .kernel import window_counts
from .simulate import Truth


def poisson_noise_rate(ed_rate_hz: float, threshold: int, window_ns: int) -> float:
    """Predicted rate of pure-noise triggers, Hz.

    Parameters
    ----------
    ed_rate_hz : float
        Noise hit rate ``lambda`` summed over all decision channels, Hz.
    threshold : int
        ``N``.
    window_ns : int
        ``Tw``, ns.

    Returns
    -------
    float
        ``R = lambda * Poisson(N; mu) * N / (N + mu)`` with ``mu = lambda * Tw``:
        up-crossings of the window count to ``N + 1`` after a drop below ``N``
        (nhit.md section 5).

    Examples
    --------
    >>> round(poisson_noise_rate(524 * 2710.0, 5, 400))
    356
    """
    mu = ed_rate_hz * window_ns * 1e-9
    log_p = -mu + threshold * math.log(mu) - math.lgamma(threshold + 1) if mu > 0 else -math.inf
    return ed_rate_hz * math.exp(log_p) * threshold / (threshold + mu)


def shower_own_windows(truth: Truth, window_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Each shower's densest window of its own ED hits.

    Returns
    -------
    k_own : ndarray of int64, shape (S,)
        Largest number of the shower's own ED hits in any ``[t, t + Tw)`` window.
    t_best : ndarray of int64, shape (S,)
        Time of the first hit of that window (-1 for showers without ED hits in the stream).
    """
    n = len(truth)
    k_own = np.zeros(n, np.int64)
    t_best = np.full(n, -1, np.int64)
    off = truth.ed_offsets
    for i in range(n):
        t = np.sort(truth.ed_time[off[i] : off[i + 1]])
        if len(t):
            counts = window_counts(t, window_ns)
            j = int(np.argmax(counts))
            k_own[i], t_best[i] = counts[j], t[j]
    return k_own, t_best


def inside(times: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Whether each time lies in one of the sorted, disjoint ranges ``[start, stop)``."""
    k = np.searchsorted(start, times, "right") - 1
    return (k >= 0) & (times < stop[np.maximum(k, 0)]) if len(start) else np.zeros(len(times), bool)


def shower_span(truth: Truth) -> tuple[np.ndarray, np.ndarray]:
    """First and last own hit time (ED or MD) of every shower; (-1, -1) if none."""
    first = np.full(len(truth), -1, np.int64)
    last = np.full(len(truth), -1, np.int64)
    for off, t in ((truth.ed_offsets, truth.ed_time), (truth.md_offsets, truth.md_time)):
        counts = np.diff(off)
        has = np.flatnonzero(counts > 0)
        if len(has):
            lo = np.minimum.reduceat(t, off[:-1][has]) if len(t) else None
            hi = np.maximum.reduceat(t, off[:-1][has])
            first[has] = np.where(first[has] < 0, lo, np.minimum(first[has], lo))
            last[has] = np.maximum(last[has], hi)
    return first, last


def noise_only(truth: Truth, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Mask of events whose range ``[start, stop)`` holds no hit of any injected shower."""
    first, last = shower_span(truth)
    ok = first >= 0
    first, last = first[ok], last[ok]
    order = np.argsort(first)
    first, last = first[order], np.maximum.accumulate(last[order]) if len(last) else last
    # an event touches a shower span if some span starts before stop and ends at/after start
    k = np.searchsorted(first, stop, "left")  # spans with first < stop
    touched = (k > 0) & (last[np.maximum(k - 1, 0)] >= start) if len(first) else \
        np.zeros(len(start), bool)
    return ~touched


def efficiency_curve(multiplicity: np.ndarray, triggered: np.ndarray, edges: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction triggered per multiplicity bin.

    Returns
    -------
    centers, efficiency, counts : ndarray, shape (len(edges) - 1,)
        Efficiency is NaN for empty bins.
    """
    idx = np.digitize(multiplicity, edges) - 1
    ok = (idx >= 0) & (idx < len(edges) - 1)
    counts = np.bincount(idx[ok], minlength=len(edges) - 1)
    hits = np.bincount(idx[ok], weights=triggered[ok], minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    return 0.5 * (edges[:-1] + edges[1:]), eff, counts


def truth_report(truth: Truth, start: np.ndarray, stop: np.ndarray, threshold: int,
                 window_ns: int, all_dets: bool = False) -> dict:
    """Efficiency and noise-rate figures of an event list against the injected showers.

    Parameters
    ----------
    truth : Truth
    start, stop : ndarray of int64
        Event ranges (sorted, disjoint), ns.
    threshold, window_ns : int
        The trigger's ``N`` and ``Tw``.
    all_dets : bool
        True for the ED+MD-triggered mode (noise rate then counts MD noise too).

    Returns
    -------
    dict
        ``showers``, ``efficiency_above_threshold`` (showers with more than N own ED
        hits in a window), ``noise_only_rate_hz``, ``poisson_prediction_hz`` and
        the arrays for the efficiency curve.
    """
    k_own, t_best = shower_own_windows(truth, window_ns)
    triggered = (t_best >= 0) & inside(t_best, start, stop)
    above = k_own > threshold
    seconds = (truth.stop_ns - truth.start_ns) * 1e-9
    lam = truth.n_ed * truth.ed_noise_hz + (truth.n_md * truth.md_noise_hz if all_dets else 0)
    n_noise = int(noise_only(truth, start, stop).sum())
    return {
        "showers": len(truth),
        "showers_above_threshold": int(above.sum()),
        "efficiency_above_threshold": float(triggered[above].mean()) if above.any() else None,
        "noise_only_events": n_noise,
        "noise_only_rate_hz": n_noise / seconds,
        "poisson_prediction_hz": poisson_noise_rate(lam, threshold, window_ns),
        "k_own": k_own, "multiplicity": truth.multiplicity, "triggered": triggered,
    }
