"""Database matching: similarity of one spectrum to every reference, with an energy-shift search.

All references are scored at once with matrix products: for ``k`` trial shifts the query
is interpolated on the window (``Q``, k x w) and every metric is a function of
``Q @ R.T`` (k x r) and per-reference window sums taken from prefix sums, so the cost is
one GEMM per metric family, not a Python loop over references.

Search: coarse shifts (``coarse_step``, default 1 eV) for every reference, a parabola
through the best coarse shift and its neighbours, then an exact fine search (0.02 eV)
over the whole shift range for the best candidates only.

Shift convention: ``shift_eV`` is added to the query's energies to align it with the
reference (a query measured 4 eV too high gives shift_eV = -4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .library import Library

__all__ = ["METRICS", "Match", "match_spectrum", "score_pairs"]

#: Metric name -> True when larger is better.
METRICS = {
    "pearson": True,        # Pearson r of normalised mu(E)
    "deriv_pearson": True,  # Pearson r of d(norm)/dE
    "cosine": True,         # cosine similarity of normalised mu(E)
    "r_factor": False,      # sum (q - r)^2 / sum q^2
    "mse": False,           # mean (q - r)^2
}


@dataclass(frozen=True)
class Match:
    """One ranked reference: its row in the library, shift (eV) and score of every metric."""

    rank: int
    row: int
    reference: str
    shift_eV: float
    score: float
    scores: dict[str, float]


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")


def _shifted(q_rel: np.ndarray, q_norm: np.ndarray, grid: np.ndarray,
             shifts: np.ndarray) -> np.ndarray:
    """Query values at grid points for each shift: q(grid - s); shape (len(shifts), len(grid))."""
    x = grid[None, :] - shifts[:, None]
    return np.interp(x.ravel(), q_rel, q_norm).reshape(x.shape)


#: Above this many window values (references x points) the coarse stage uses a low-rank index.
LOWRANK_MIN = 2_000_000
#: Fraction of the window matrix's energy the low-rank basis keeps, and its size limits.
LOWRANK_ENERGY, LOWRANK_MAX, LOWRANK_MIN_RANK = 1.0 - 2e-6, 48, 16
#: Rows (evenly spaced) used to find the low-rank basis.
GRAM_ROWS = 20_000


@dataclass(frozen=True)
class _Index:
    """Coarse-search index of one window: ``coef`` (r, p) with R ~ coef @ basis.T, sums."""

    coef: np.ndarray
    basis: np.ndarray | None
    s1: np.ndarray
    s2: np.ndarray


def _index(lib: Library, sl: slice, deriv: bool) -> _Index:
    """Window of the reference matrix, its per-reference sums and (for big libraries) a
    low-rank factorisation R_w ~ C B^T (B: leading eigenvectors of R_w^T R_w over a row
    sample; C = R_w B, each reference's projection), cached on the
    library so that a batch of queries pays for it once.

    The window lies inside the references' common range, so ``lib.norm`` needs no NaN
    handling there and is used without a copy.
    """
    key = ("index", deriv, sl.start, sl.stop)
    if key in lib._cache:
        return lib._cache[key]
    if deriv:
        step = np.gradient(lib.grid).astype(np.float32)
        win = np.nan_to_num(np.gradient(lib.norm, axis=1) / step)[:, sl].astype(np.float32)
    else:
        win = lib.norm[:, sl]
    s1 = win.sum(axis=1, dtype=np.float64)
    s2 = np.einsum("ij,ij->i", win, win, dtype=np.float64)
    basis = None
    if win.size > LOWRANK_MIN:
        sample = win[:: max(1, win.shape[0] // GRAM_ROWS)]  # the basis from a row sample
        gram = (sample.T @ sample).astype(np.float64)
        evals, evecs = np.linalg.eigh(gram)
        evals, evecs = evals[::-1], evecs[:, ::-1]
        kept = np.cumsum(np.maximum(evals, 0)) / max(evals.clip(0).sum(), 1e-300)
        p = int(np.searchsorted(kept, LOWRANK_ENERGY) + 1)
        p = min(max(p, LOWRANK_MIN_RANK), LOWRANK_MAX, win.shape[1])
        basis = np.ascontiguousarray(evecs[:, :p], dtype=np.float32)
        win = win @ basis
    idx = _Index(np.ascontiguousarray(win), basis, s1, s2)
    lib._cache[key] = idx
    return idx


def _on_device(lib: Library, idx: _Index, xp: Any, key: tuple) -> tuple:
    """The index's arrays as ``xp`` arrays (coef, s1, s2, basis), cached for a GPU."""
    if xp is np:
        return (idx.coef, idx.s1.astype(np.float32), idx.s2.astype(np.float32), idx.basis)
    ckey = ("device", getattr(xp, "__name__", str(xp)), *key)
    if ckey not in lib._cache:
        lib._cache[ckey] = (xp.asarray(idx.coef), xp.asarray(idx.s1, dtype=xp.float32),
                            xp.asarray(idx.s2, dtype=xp.float32),
                            None if idx.basis is None else xp.asarray(idx.basis))
    return lib._cache[ckey]


def _scores(metric: str, q: Any, r: Any, s1: Any, s2: Any, basis: Any = None,
            xp: Any = np) -> Any:
    """Scores (k, r) of k queries against the references, on the same points.

    ``q`` (k, w) queries; ``r`` (r, w) references, or their coefficients (r, p) in
    ``basis`` (w, p); ``s1``, ``s2`` (r,) the references' sums and sums of squares.
    """
    n = q.shape[1]
    proj = (lambda v: v) if basis is None else (lambda v: v @ basis)
    if metric in ("pearson", "deriv_pearson"):
        qc = q - q.mean(axis=1, keepdims=True)
        num = proj(qc / xp.sqrt((qc * qc).sum(axis=1, keepdims=True) + 1e-30)) @ r.T
        num *= (1.0 / xp.sqrt(xp.maximum(s2 - s1 * s1 / n, 1e-30)))[None, :]
        return num
    cross = proj(q) @ r.T
    qq = (q * q).sum(axis=1)[:, None]
    if metric == "cosine":
        return cross / (xp.sqrt(qq) * xp.sqrt(xp.maximum(s2, 1e-30))[None, :] + 1e-30)
    sse = xp.maximum(qq - 2 * cross + s2[None, :], 0.0)
    return sse / qq if metric == "r_factor" else sse / n


def _best_rows(sc: Any, xp: Any) -> tuple[Any, Any]:
    """Row index and value of the maximum of each column of ``sc`` (k, r), k small.

    A pass per row keeps the memory access contiguous (``argmax(axis=0)`` strides).
    """
    top = sc[0].copy()
    best = xp.zeros(sc.shape[1], dtype=xp.int64)
    for k in range(1, sc.shape[0]):
        better = sc[k] > top
        best[better] = k
        xp.maximum(top, sc[k], out=top)
    return best, top


def score_pairs(q: np.ndarray, r: np.ndarray, metric: str) -> np.ndarray:
    """Exact (float64) score of each row of ``q`` against the matching row of ``r``.

    Parameters
    ----------
    q, r : ndarray of shape (m, w)
        Query and reference values on the same grid (for ``deriv_pearson``: derivatives).
    metric : str
        One of :data:`METRICS`.

    Returns
    -------
    ndarray of shape (m,)
    """
    _check_metric(metric)
    q, r = np.atleast_2d(q).astype(float), np.atleast_2d(r).astype(float)
    if metric in ("pearson", "deriv_pearson"):
        qc = q - q.mean(axis=1, keepdims=True)
        rc = r - r.mean(axis=1, keepdims=True)
        return (qc * rc).sum(1) / np.sqrt((qc * qc).sum(1) * (rc * rc).sum(1) + 1e-300)
    if metric == "cosine":
        return (q * r).sum(1) / np.sqrt((q * q).sum(1) * (r * r).sum(1) + 1e-300)
    sse = ((q - r) ** 2).sum(1)
    return sse / (q * q).sum(1) if metric == "r_factor" else sse / q.shape[1]


def _window(lib: Library, q_rel: np.ndarray, fit_range: tuple[float, float],
            shift_range: float) -> slice:
    lo, hi = lib.coverage()
    lo = max(lo, fit_range[0], q_rel[0] + shift_range)
    hi = min(hi, fit_range[1], q_rel[-1] - shift_range)
    if hi - lo < 5.0:
        raise ValueError(
            f"the fit window is too short: {fit_range[0]:g}..{fit_range[1]:g} eV from the edge "
            f"narrowed to {lo:.1f}..{hi:.1f} eV by the spectrum ({q_rel[0]:.1f}..{q_rel[-1]:.1f}"
            f" eV) less the ±{shift_range:g} eV shift search and the references' common range; "
            "widen fit_range, reduce shift_range or measure a longer scan"
        )
    return lib.window(lo, hi)


def match_spectrum(
    q_rel: np.ndarray,
    q_norm: np.ndarray,
    lib: Library,
    metric: str = "pearson",
    top_k: int = 5,
    shift_range: float = 5.0,
    fit_range: tuple[float, float] = (-20.0, 80.0),
    coarse_step: float = 1.0,
    fine_step: float = 0.02,
    xp: Any = np,
) -> list[Match]:
    """Rank the references of ``lib`` by similarity to one normalised spectrum.

    Parameters
    ----------
    q_rel : ndarray of shape (n,)
        Query energies in eV relative to the tabulated edge energy, increasing.
    q_norm : ndarray of shape (n,)
        Normalised query spectrum.
    lib : Library
        References of the same element and edge (see :meth:`Library.for_edge`).
    metric : str
        Ranking metric, one of :data:`METRICS`.
    top_k : int
        Number of matches returned.
    shift_range : float
        Half width (eV) of the shift search; 0 disables it.
    fit_range : (float, float)
        Window in eV relative to the edge; narrowed to where the query (at every trial
        shift) and all references have data.
    coarse_step, fine_step : float
        Shift steps (eV) of the all-reference search and of the candidates' refinement.
    xp : module
        ``numpy`` or ``cupy`` for the all-reference stage.

    Returns
    -------
    list of Match
        Best first; ``scores`` holds every metric at the found shift.
    """
    _check_metric(metric)
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1; got {top_k}")
    q_rel, q_norm = np.asarray(q_rel, float), np.asarray(q_norm, float)
    shift_range = float(abs(shift_range))
    sl = _window(lib, q_rel, fit_range, shift_range)
    g = lib.grid[sl]
    deriv = metric == "deriv_pearson"
    higher = METRICS[metric]
    nstep = max(1, round(shift_range / coarse_step))
    shifts = np.linspace(-shift_range, shift_range, 2 * nstep + 1) if shift_range else np.zeros(1)
    q = _shifted(q_rel, q_norm, g, shifts)
    if deriv:
        q = np.gradient(q, g, axis=1)
    idx = _index(lib, sl, deriv)
    dev = _on_device(lib, idx, xp, (deriv, sl.start, sl.stop))
    sc = _scores(metric, xp.asarray(q, dtype=xp.float32), *dev, xp=xp)
    sc = sc if higher else -sc  # (shifts, references)
    best, top = _best_rows(sc, xp)
    if shifts.size >= 3:  # parabola through the best coarse shift and its neighbours
        b = xp.clip(best, 1, shifts.size - 2)
        cols = xp.arange(sc.shape[1])
        ym, y0, yp = sc[b - 1, cols], sc[b, cols], sc[b + 1, cols]
        curv = ym - 2 * y0 + yp
        inner = (best == b) & (curv < 0)  # a maximum inside the range: use the vertex
        off = xp.clip(0.5 * (ym - yp) / xp.where(inner, curv, -1.0), -1.0, 1.0)
        vertex = y0 + 0.5 * off * (yp - ym) + 0.5 * off * off * curv
        top = xp.where(inner, vertex, top)
    top = np.asarray(top.get() if hasattr(top, "get") else top)
    ncand = min(len(lib), max(10 * top_k, 64))
    cand = np.argpartition(-top, ncand - 1)[:ncand] if ncand < len(lib) else np.arange(len(lib))
    return _refine(q_rel, q_norm, lib, sl, cand, metric, top_k, shift_range, fine_step)


def _refine(q_rel: np.ndarray, q_norm: np.ndarray, lib: Library, sl: slice, cand: np.ndarray,
            metric: str, top_k: int, shift_range: float, fine_step: float) -> list[Match]:
    """Exact float64 fine shift search for the candidate references; every metric reported."""
    g = lib.grid[sl]
    n = max(1, round(shift_range / fine_step))
    shifts = np.linspace(-shift_range, shift_range, 2 * n + 1) if shift_range else np.zeros(1)
    q = _shifted(q_rel, q_norm, g, shifts)
    refs = lib.norm[cand][:, sl].astype(float)
    if metric == "deriv_pearson":
        qs, rs = np.gradient(q, g, axis=1), np.gradient(refs, g, axis=1)
    else:
        qs, rs = q, refs
    s1, s2 = rs.sum(1), (rs * rs).sum(1)
    sc = _scores(metric, qs, rs, s1, s2)  # (shifts, candidates)
    sc = sc if METRICS[metric] else -sc
    ibest = sc.argmax(axis=0)
    order = np.argsort(-sc[ibest, np.arange(cand.size)], kind="stable")[:top_k]
    out = []
    for rank, j in enumerate(order, start=1):
        s = float(shifts[ibest[j]])
        qa = np.interp(g - s, q_rel, q_norm)[None, :]
        ra = refs[j][None, :]
        scores = {}
        for m in METRICS:
            a, b = (np.gradient(qa, g, axis=1), np.gradient(ra, g, axis=1)) \
                if m == "deriv_pearson" else (qa, ra)
            scores[m] = float(score_pairs(a, b, m)[0])
        out.append(Match(rank, int(cand[j]), lib.names[cand[j]], s, scores[metric], scores))
    return out
