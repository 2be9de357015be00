"""The paper's time ordering: merge the per-channel ordered runs of a fragment.

Hits arrive time-ordered within each channel (a "run" is a maximal stretch of
consecutive records of one channel), in arbitrary order across channels. The
paper orders them by merge sort on these already ordered sub-sequences
(divide and conquer). :func:`merge_channel_runs` does exactly that, bottom-up,
pairing neighbouring runs until one remains: ``O(n log r)`` for ``r`` runs.

The trigger's production path (:func:`~.kernel.scan_hits`) gets the same ordered
times more cheaply by sorting only the hits that can reach the threshold; the
tests check that both give the same order.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover
    njit = None


def channel_runs(hits: np.ndarray) -> np.ndarray:
    """Start indices of the runs of consecutive records of one (det, channel).

    Returns
    -------
    ndarray of int64, shape (r + 1,)
        Run boundaries ``b``; run ``k`` is ``hits[b[k]:b[k+1]]``.
    """
    key = hits["channel"].astype(np.int64) * 4 + hits["det"]
    change = np.flatnonzero(key[1:] != key[:-1]) + 1
    return np.concatenate(([0], change, [len(hits)])).astype(np.int64)


def _merge_pass_py(src, dst, bounds):  # pragma: no cover - compiled below
    nb = len(bounds) - 1
    out = np.empty(nb // 2 + nb % 2 + 1, np.int64)
    out[0] = 0
    r = 0
    for k in range(0, nb, 2):
        lo, mid = bounds[k], bounds[k + 1]
        hi = bounds[k + 2] if k + 2 <= nb else mid
        i, j, o = lo, mid, lo
        while i < mid and j < hi:
            if src[j] < src[i]:
                dst[o] = src[j]
                j += 1
            else:
                dst[o] = src[i]
                i += 1
            o += 1
        while i < mid:
            dst[o] = src[i]
            i += 1
            o += 1
        while j < hi:
            dst[o] = src[j]
            j += 1
            o += 1
        r += 1
        out[r] = hi
    return out[: r + 1]


_merge_pass = (njit(cache=__name__.startswith("hisci."), nogil=True)(_merge_pass_py)
               if njit is not None else _merge_pass_py)


def merge_channel_runs(times: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Merge sorted runs into one time-ordered array (the paper's merge sort).

    Parameters
    ----------
    times : ndarray of int64, shape (n,)
        Hit times, ascending inside each run.
    bounds : ndarray of int64, shape (r + 1,)
        Run boundaries, as from :func:`channel_runs`.

    Returns
    -------
    ndarray of int64, shape (n,)
        The same times in ascending order.

    Raises
    ------
    ValueError
        If a run is not ascending (the input breaks the per-channel order).

    Examples
    --------
    >>> merge_channel_runs(np.array([5, 9, 1, 7, 2]), np.array([0, 2, 4, 5])).tolist()
    [1, 2, 5, 7, 9]
    """
    src = np.array(times, np.int64)
    bounds = np.asarray(bounds, np.int64)
    step_down = np.flatnonzero(np.diff(src) < 0) + 1
    inside = step_down[~np.isin(step_down, bounds)]
    if len(inside):
        raise ValueError(f"hit {int(inside[0])} is earlier than the hit before it in the same "
                         "channel run: per-channel time order is broken")
    dst = np.empty_like(src)
    while len(bounds) > 2:
        bounds = _merge_pass(src, dst, bounds)
        src, dst = dst, src
    return src
