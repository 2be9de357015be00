"""Iterative reconstruction: SIRT and CGLS on a projector with an exact adjoint.

Both solve ``A x = b`` in the least-squares sense for a block of slices at once, with
``A`` the :class:`.fourier.FourierProjector` (any object with ``forward`` and ``adjoint`` works).

* SIRT (Gregor & Benson 2008, doi:10.1109/TMI.2008.923696): ``x <- x + lam C A^T R (b - A x)``
  with ``R = 1 / A 1`` (inverse ray lengths through the disc) and ``C = 1 / A^T 1``. The step
  ``lam`` is ``1 / L``, ``L`` the largest eigenvalue of ``C A^T R A`` found by power iteration, so
  the weighted residual ``||b - A x||_R`` decreases at every iteration (preconditioned Landweber).
* CGLS (Hestenes & Stiefel 1952; Björck 1996, alg. 7.4.1): conjugate gradients on the normal
  equations; ``||A^T (b - A x)||`` and ``||b - A x||`` decrease monotonically in exact arithmetic.
  Stop early (10-30 iterations) to regularise noisy data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["IterativeResult", "Projector", "cgls", "sirt"]


class Projector(Protocol):
    def forward(self, images: np.ndarray) -> np.ndarray: ...
    def adjoint(self, sinograms: np.ndarray) -> np.ndarray: ...


@dataclass
class IterativeResult:
    """Images and per-iteration residual norms (one row per iteration, one column per slice)."""

    images: np.ndarray
    residuals: list[np.ndarray] = field(default_factory=list)
    seconds_per_iteration: float = 0.0


def _norms(r: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(r.astype(np.float64) ** 2, axis=(1, 2)))


def _support(n: int) -> np.ndarray:
    c = (n - 1) / 2.0
    r = np.arange(n) - c
    return (r[:, None] ** 2 + r[None, :] ** 2 <= (n / 2.0) ** 2).astype(np.float32)


def sirt(
    projector: Any,
    sinograms: np.ndarray,
    n_iter: int = 100,
    *,
    nonneg: bool = False,
    callback: Callable[[int], None] | None = None,
) -> IterativeResult:
    """Simultaneous iterative reconstruction technique.

    Parameters
    ----------
    projector : Projector
        ``forward`` (n_slices, n, n) -> (n_slices, n_angles, n_det) and its adjoint.
    sinograms : ndarray of shape (n_slices, n_angles, n_det)
        Line integrals.
    n_iter : int
        Iterations.
    nonneg : bool
        Clip negative values after each step (projected Landweber; still monotone).
    callback : callable, optional
        Called with the iteration number (progress and cancellation).

    Returns
    -------
    IterativeResult
        ``residuals[k]`` is ``||R^(1/2) (b - A x_k)||`` per slice, non-increasing.
    """
    import time

    b = np.asarray(sinograms, dtype=np.float32)
    n = projector.n_img
    support = _support(n)[None]
    row = projector.forward(support)
    R = np.where(row > 1.0, 1.0 / np.maximum(row, 1.0), 1.0).astype(np.float32)
    col = projector.adjoint(np.ones((1,) + b.shape[1:], dtype=np.float32))
    C = (support / np.maximum(col, 1e-3 * col.max())).astype(np.float32)
    # largest eigenvalue of C A^T R A on the support (power iteration)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((1, n, n)).astype(np.float32) * support
    lam_max = 1.0
    for _ in range(8):
        u = C * projector.adjoint(R * projector.forward(v))
        lam_max = float(np.sqrt(np.sum(u**2) / max(np.sum(v**2), 1e-30)))
        v = u / max(np.sqrt(np.sum(u**2)), 1e-30)
    step = np.float32(1.0 / (1.05 * lam_max))
    x = np.zeros((b.shape[0], n, n), dtype=np.float32)
    result = IterativeResult(x)
    t0 = time.perf_counter()
    r = b - projector.forward(x)
    for k in range(n_iter):
        result.residuals.append(_norms(np.sqrt(R) * r))
        x += step * C * projector.adjoint(R * r)
        if nonneg:
            np.maximum(x, 0.0, out=x)
        r = b - projector.forward(x)
        if callback is not None:
            callback(k)
    result.residuals.append(_norms(np.sqrt(R) * r))
    result.images = x
    result.seconds_per_iteration = (time.perf_counter() - t0) / max(n_iter, 1)
    return result


def cgls(
    projector: Any,
    sinograms: np.ndarray,
    n_iter: int = 20,
    *,
    callback: Callable[[int], None] | None = None,
) -> IterativeResult:
    """Conjugate gradient least squares.

    Parameters
    ----------
    projector : Projector
    sinograms : ndarray of shape (n_slices, n_angles, n_det)
    n_iter : int
        Iterations (the regularisation: fewer is smoother).
    callback : callable, optional

    Returns
    -------
    IterativeResult
        ``residuals[k]`` is ``||b - A x_k||`` per slice, non-increasing.
    """
    import time

    b = np.asarray(sinograms, dtype=np.float64)
    n = projector.n_img
    support = _support(n)[None].astype(np.float64)
    x = np.zeros((b.shape[0], n, n))
    r = b.copy()
    s = support * projector.adjoint(r)
    p = s.copy()
    gamma = np.sum(s**2, axis=(1, 2))
    result = IterativeResult(x)
    t0 = time.perf_counter()
    for k in range(n_iter):
        result.residuals.append(_norms(r))
        q = projector.forward(p)
        qq = np.sum(q**2, axis=(1, 2))
        alpha = np.where(qq > 0, gamma / np.where(qq > 0, qq, 1.0), 0.0)
        x += alpha[:, None, None] * p
        r -= alpha[:, None, None] * q
        s = support * projector.adjoint(r)
        gamma_new = np.sum(s**2, axis=(1, 2))
        beta = np.where(gamma > 0, gamma_new / np.where(gamma > 0, gamma, 1.0), 0.0)
        p = s + beta[:, None, None] * p
        gamma = gamma_new
        if callback is not None:
            callback(k)
    result.residuals.append(_norms(r))
    result.images = x.astype(np.float32)
    result.seconds_per_iteration = (time.perf_counter() - t0) / max(n_iter, 1)
    return result
