"""Principal component analysis of a set of normalised spectra and target transformation.

Two decompositions answer two questions:

* **Variance (larch ``pca_train``):** the mean spectrum is subtracted, each difference
  spectrum is centred and scaled to unit variance, and the eigen-decomposition of their
  covariance gives the components and fractional variances (what larch and Athena show).
* **Number of species (Malinowski factor analysis):** the SVD of the raw (uncentred)
  data matrix; the number of significant components is the minimum of Malinowski's
  indicator function IND(k) = RE(k) / (c - k)^2 with the real error
  RE(k) = sqrt(sum_{j>k} lambda_j / (n (c - k))), for n energies and c spectra
  (Malinowski, Anal. Chem. 49 (1977) 612). A mixture series of k species has rank k.

Target transformation projects a candidate standard on the first k raw components
(plus nothing else); a small residual means the candidate can be an end member.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PcaResult", "pca_train", "target_transform"]


@dataclass(frozen=True)
class PcaResult:
    """PCA of ``c`` spectra on ``n`` energies.

    Attributes
    ----------
    x : ndarray of shape (n,)
        Energies (eV).
    mean : ndarray of shape (n,)
        Mean spectrum.
    components : ndarray of shape (c, n)
        Larch-style components (unit-variance scaled), strongest first.
    variances : ndarray of shape (c,)
        Fractional variances of ``components`` (sum 1).
    basis : ndarray of shape (c, n)
        Orthonormal raw-data components (right singular vectors), strongest first.
    eigenvalues : ndarray of shape (c,)
        Squared singular values of the raw data.
    ind : ndarray of shape (c - 1,)
        Malinowski IND for k = 1 .. c - 1.
    nsig : int
        Number of significant components (argmin of ``ind`` + 1).
    cumulative : ndarray of shape (c,)
        Cumulative fraction of the raw data's sum of squares.
    """

    x: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    basis: np.ndarray
    eigenvalues: np.ndarray
    ind: np.ndarray
    nsig: int
    cumulative: np.ndarray


def pca_train(x: np.ndarray, spectra: np.ndarray) -> PcaResult:
    """Decompose a set of spectra on a common grid.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Energies (eV).
    spectra : ndarray of shape (c, n)
        Normalised spectra, c >= 3.

    Returns
    -------
    PcaResult
    """
    y = np.asarray(spectra, float)
    if y.ndim != 2 or y.shape[1] != np.size(x):
        raise ValueError(f"spectra must have shape (c, {np.size(x)}); got {y.shape}")
    c, n = y.shape
    if c < 3:
        raise ValueError(f"PCA needs at least 3 spectra; got {c}")
    mean = y.mean(axis=0)
    d = y - mean
    d = (d - d.mean(axis=1, keepdims=True)) / np.maximum(d.std(axis=1, keepdims=True), 1e-300)
    _, s_c, vt_c = np.linalg.svd(d, full_matrices=False)
    variances = s_c**2 / max((s_c**2).sum(), 1e-300)
    _, s, vt = np.linalg.svd(y, full_matrices=False)
    lam = s**2
    ks = np.arange(1, c)
    tail = np.array([lam[k:].sum() for k in ks])
    re = np.sqrt(tail / (n * (c - ks)))
    ind = re / (c - ks) ** 2
    return PcaResult(
        x=np.asarray(x, float), mean=mean, components=vt_c, variances=variances, basis=vt,
        eigenvalues=lam, ind=ind, nsig=int(np.argmin(ind)) + 1,
        cumulative=np.cumsum(lam) / lam.sum(),
    )


def target_transform(model: PcaResult, target: np.ndarray, ncomp: int | None = None
                     ) -> dict[str, float | np.ndarray]:
    """Project a candidate standard on the first ``ncomp`` raw components.

    Parameters
    ----------
    model : PcaResult
    target : ndarray of shape (n,)
        Candidate on ``model.x``.
    ncomp : int, optional
        Components used (default ``model.nsig``).

    Returns
    -------
    dict
        ``fit`` (n,), ``coefs`` (ncomp,), ``r_factor`` = sum (t - fit)^2 / sum t^2,
        ``chi2`` = sum (t - fit)^2, ``rms`` = sqrt(chi2 / n).
    """
    t = np.asarray(target, float)
    if t.shape != model.x.shape:
        raise ValueError(f"target must have shape {model.x.shape}; got {t.shape}")
    k = model.nsig if ncomp is None else int(ncomp)
    if not 1 <= k <= model.basis.shape[0]:
        raise ValueError(f"ncomp must be within 1..{model.basis.shape[0]}; got {k}")
    basis = model.basis[:k]
    coefs = basis @ t
    fit = coefs @ basis
    chi2 = float(((t - fit) ** 2).sum())
    return {"fit": fit, "coefs": coefs, "chi2": chi2, "r_factor": chi2 / float((t * t).sum()),
            "rms": float(np.sqrt(chi2 / t.size))}
