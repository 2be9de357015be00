"""Linear combination fitting (LCF) of normalised spectra with standards.

Model (on a window of ``n`` energies)::

    y(E) ~ sum_j w_j * s_j(E - dE_j)

with w_j >= 0, optionally sum_j w_j = 1, and optionally one energy shift dE_j per
standard (positive moves the standard to higher energy), bounded by ``shift_range``.

The weights are the exact solution of the constrained least-squares problem: for a few
standards (<= 6) every support subset is solved in closed form (with the sum constraint
through its Lagrange multiplier) and the best feasible one is kept. The optimum of the
convex problem is the unconstrained optimum on its own support, so this is exact, and
it is vectorised over a whole batch of spectra sharing the standards. Shifts are found
by bounded nonlinear least squares over weights and shifts together
(``scipy.optimize.least_squares``, trust-region reflective, analytic Jacobian), after
which the weights are re-solved exactly at the found shifts. Uncertainties come from the covariance (J^T J)^-1 * chi2_red of
the free parameters, as lmfit (and so larch's ``lincombo_fit``) reports them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["LcfResult", "lcf_batch", "lcf_combinations", "solve_weights"]

MAX_STANDARDS = 6


@dataclass(frozen=True)
class LcfResult:
    """LCF of ``s`` spectra with ``m`` standards on ``n`` energies.

    Attributes
    ----------
    standards : list of str, length m
    weights, stderr : ndarray of shape (s, m)
        Fractions and their standard errors (0 for a weight held at its bound 0).
    shifts, shift_stderr : ndarray of shape (s, m)
        Energy shifts of the standards in eV (0 when not varied).
    fit : ndarray of shape (s, n)
        Fitted spectra.
    r_factor, chi2, reduced_chi2 : ndarray of shape (s,)
        sum (y - fit)^2 / sum y^2, sum (y - fit)^2, chi2 / (n - n_varied).
    """

    standards: list[str]
    weights: np.ndarray
    stderr: np.ndarray
    shifts: np.ndarray
    shift_stderr: np.ndarray
    fit: np.ndarray
    r_factor: np.ndarray
    chi2: np.ndarray
    reduced_chi2: np.ndarray

    @property
    def sum(self) -> np.ndarray:
        return self.weights.sum(axis=1)


def _subsets(m: int, sum_to_one: bool) -> list[tuple[int, ...]]:
    out = [c for k in range(1, m + 1) for c in itertools.combinations(range(m), k)]
    return out if sum_to_one else [()] + out


def solve_weights(a: np.ndarray, y: np.ndarray, sum_to_one: bool = False) -> np.ndarray:
    """Non-negative least-squares weights, optionally summing to one, for many spectra.

    Parameters
    ----------
    a : ndarray of shape (n, m)
        Standards as columns (m <= 6).
    y : ndarray of shape (n,) or (n, s)
        Spectra as columns.
    sum_to_one : bool
        Impose sum(w) = 1.

    Returns
    -------
    ndarray of shape (m,) or (m, s)
        Exact minimisers of ||a w - y||^2 subject to w >= 0 (and sum(w) = 1).

    Examples
    --------
    >>> a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> solve_weights(a, a @ np.array([0.3, 0.7])).round(6).tolist()
    [0.3, 0.7]
    """
    a = np.asarray(a, float)
    one = np.asarray(y).ndim == 1
    y = np.asarray(y, float).reshape(a.shape[0], -1)
    _n, m = a.shape
    if m > MAX_STANDARDS:
        raise ValueError(f"at most {MAX_STANDARDS} standards in one fit; got {m} "
                         "(use combinations of fewer)")
    best = np.full(y.shape[1], np.inf)
    w_best = np.zeros((m, y.shape[1]))
    gram_all = a.T @ a
    aty_all = a.T @ y
    yy = (y * y).sum(axis=0)
    for sub in _subsets(m, sum_to_one):
        idx = list(sub)
        w = np.zeros((m, y.shape[1]))
        if idx:
            gram = gram_all[np.ix_(idx, idx)]
            ginv = np.linalg.pinv(gram)
            ws = ginv @ aty_all[idx]
            if sum_to_one:
                g1 = ginv.sum(axis=1)
                ws = ws - np.outer(g1, ws.sum(axis=0) - 1.0) / max(g1.sum(), 1e-300)
            w[idx] = ws
        # ||a w - y||^2 = w'Gw - 2 w'a'y + y'y
        sse = np.einsum("is,ij,js->s", w, gram_all, w) - 2 * (w * aty_all).sum(0) + yy
        ok = (w >= -1e-12).all(axis=0) & (sse < best - 1e-15 * np.maximum(yy, 1.0))
        best = np.where(ok, sse, best)
        w_best[:, ok] = w[:, ok]
    w_best = np.maximum(w_best, 0.0)
    return w_best[:, 0] if one else w_best


def _shifted_standards(grid: np.ndarray, standards: np.ndarray, x: np.ndarray,
                       shifts: np.ndarray, slopes: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Standards at x - shift_j and their derivatives d s_j / dE; shape (n, m) each."""
    if slopes is None:
        slopes = np.gradient(standards, grid, axis=1)
    a = np.empty((x.size, standards.shape[0]))
    da = np.empty_like(a)
    for j, s in enumerate(shifts):
        a[:, j] = np.interp(x - s, grid, standards[j])
        da[:, j] = np.interp(x - s, grid, slopes[j])
    return a, da


def _fit_shifts(x: np.ndarray, y: np.ndarray, grid: np.ndarray, standards: np.ndarray,
                slopes: np.ndarray, w0: np.ndarray, sum_to_one: bool, shift_range: float
                ) -> np.ndarray:
    """Weights and shifts of one spectrum by bounded nonlinear least squares.

    Parameters are (w_1..w_m, dE_1..dE_m) with w >= 0 and |dE| <= shift_range; the
    analytic Jacobian is (s_j(E - dE_j), -w_j s_j'(E - dE_j)). The sum-to-one constraint
    enters as one heavily weighted residual row. Returns the shifts.
    """
    from scipy.optimize import least_squares

    m = standards.shape[0]
    lam = 1e3 * np.sqrt(x.size)

    def resid(p: np.ndarray) -> np.ndarray:
        a, _ = _shifted_standards(grid, standards, x, p[m:], slopes)
        r = a @ p[:m] - y
        return np.append(r, lam * (p[:m].sum() - 1.0)) if sum_to_one else r

    def jac(p: np.ndarray) -> np.ndarray:
        a, da = _shifted_standards(grid, standards, x, p[m:], slopes)
        j = np.hstack([a, -da * p[:m]])
        if sum_to_one:
            j = np.vstack([j, np.r_[np.full(m, lam), np.zeros(m)]])
        return j

    lo = np.r_[np.zeros(m), np.full(m, -shift_range)]
    hi = np.r_[np.full(m, np.inf), np.full(m, shift_range)]
    p0 = np.r_[np.clip(w0, 1e-6, None), np.zeros(m)]
    sol = least_squares(resid, p0, jac=jac, bounds=(lo, hi), method="trf", x_scale="jac",
                        xtol=1e-10, ftol=1e-12, max_nfev=200)
    return sol.x[m:]


def _uncertainties(a: np.ndarray, da: np.ndarray, w: np.ndarray, sse: float, n: int,
                   sum_to_one: bool, vary_shift: bool) -> tuple[np.ndarray, np.ndarray]:
    m = a.shape[1]
    free = np.flatnonzero(w > 1e-10)
    nvary = m - (1 if sum_to_one else 0) + (m if vary_shift else 0)
    dof = max(n - nvary, 1)
    redchi = sse / dof
    # parameters: free weights (last one eliminated with sum_to_one), then shifts
    wcols = list(free[:-1]) if sum_to_one and free.size else list(free)
    jac = [a[:, j] - (a[:, free[-1]] if sum_to_one else 0.0) for j in wcols]
    if vary_shift:
        jac += [-w[j] * da[:, j] for j in range(m)]
    w_err, s_err = np.zeros(m), np.zeros(m)
    if not jac:
        return w_err, s_err
    jmat = np.stack(jac, axis=1)
    cov = np.linalg.pinv(jmat.T @ jmat) * redchi
    k = len(wcols)
    for i, j in enumerate(wcols):
        w_err[j] = np.sqrt(max(cov[i, i], 0.0))
    if sum_to_one and free.size:
        w_err[free[-1]] = np.sqrt(max(cov[:k, :k].sum(), 0.0))
    if vary_shift:
        s_err[:] = np.sqrt(np.maximum(np.diag(cov)[k:], 0.0))
    return w_err, s_err


def lcf_batch(
    x: np.ndarray,
    y: np.ndarray,
    grid: np.ndarray,
    standards: np.ndarray,
    names: list[str],
    sum_to_one: bool = False,
    vary_shift: bool = False,
    shift_range: float = 3.0,
) -> LcfResult:
    """Fit every spectrum of a batch with the same standards.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Fit energies (eV, any origin shared with ``grid``), inside the standards' range.
    y : ndarray of shape (n,) or (s, n)
        Normalised spectra at ``x``.
    grid : ndarray of shape (g,)
        Energies of the standards (same origin as ``x``).
    standards : ndarray of shape (m, g)
        Normalised standards.
    names : list of str, length m
    sum_to_one : bool
        Force the weights to sum to 1 (weights stay non-negative).
    vary_shift : bool
        Fit one energy shift per standard within ±``shift_range`` eV.
    shift_range : float
        Bound (eV) on the shifts.

    Returns
    -------
    LcfResult
    """
    x = np.asarray(x, float)
    y = np.atleast_2d(np.asarray(y, float))
    standards = np.atleast_2d(np.asarray(standards, float))
    s, n = y.shape
    m = standards.shape[0]
    if len(names) != m:
        raise ValueError(f"{len(names)} names for {m} standards")
    if y.shape[1] != x.size:
        raise ValueError(f"y has {y.shape[1]} energies, x has {x.size}")
    if not np.all(np.isfinite(standards[:, (grid >= x[0]) & (grid <= x[-1])])):
        raise ValueError("a standard does not cover the whole fit range; narrow fit_range")
    zero = np.zeros(m)
    slopes = np.gradient(standards, grid, axis=1)
    a0, da0 = _shifted_standards(grid, standards, x, zero, slopes)
    weights = solve_weights(a0, y.T, sum_to_one).T.copy()
    shifts = np.zeros((s, m))
    if vary_shift and shift_range > 0:
        for i in range(s):
            shifts[i] = _fit_shifts(x, y[i], grid, standards, slopes, weights[i], sum_to_one,
                                    shift_range)
            a, _ = _shifted_standards(grid, standards, x, shifts[i], slopes)
            weights[i] = solve_weights(a, y[i], sum_to_one)  # exact at the found shifts
    fit = np.empty_like(y)
    stderr, shift_err = np.zeros((s, m)), np.zeros((s, m))
    chi2 = np.empty(s)
    for i in range(s):
        a, da = (a0, da0) if not vary_shift else _shifted_standards(grid, standards, x,
                                                                      shifts[i], slopes)
        fit[i] = a @ weights[i]
        chi2[i] = float(((y[i] - fit[i]) ** 2).sum())
        stderr[i], shift_err[i] = _uncertainties(a, da, weights[i], chi2[i], n, sum_to_one,
                                                 vary_shift)
    nvary = m - (1 if sum_to_one else 0) + (m if vary_shift else 0)
    return LcfResult(
        standards=list(names), weights=weights, stderr=stderr, shifts=shifts,
        shift_stderr=shift_err, fit=fit, r_factor=chi2 / (y * y).sum(axis=1), chi2=chi2,
        reduced_chi2=chi2 / max(n - nvary, 1),
    )


def lcf_combinations(
    x: np.ndarray,
    y: np.ndarray,
    grid: np.ndarray,
    standards: np.ndarray,
    names: list[str],
    min_size: int = 2,
    max_size: int = 4,
    **kwargs: float | bool,
) -> list[LcfResult]:
    """Athena-style combinatorics: fit every subset of ``min_size``..``max_size`` standards.

    Returns
    -------
    list of LcfResult
        One per combination, in itertools order; rank them per spectrum by
        ``reduced_chi2`` (or ``r_factor``).
    """
    m = len(names)
    if m < min_size:
        raise ValueError(f"combinatorics needs at least {min_size} standards; got {m}")
    out = []
    for k in range(min_size, min(max_size, m) + 1):
        for combo in itertools.combinations(range(m), k):
            idx = list(combo)
            out.append(lcf_batch(x, y, grid, standards[idx], [names[j] for j in idx], **kwargs))
    return out
