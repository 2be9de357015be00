"""TomoPy-style functions, so that porting a Daisy/TomoPy script is a one-line import change::

    import tomopy                                                   # before
    from hisci.builtin_plugins.ct_recon import tomopy_compat as tomopy   # after

Conventions are TomoPy's: angles in radians, data ordered (projection, row, column) unless
``sinogram_order=True``, ``center`` in detector pixels (scalar or one per slice; default
``n_cols / 2`` as in TomoPy), ``algorithm=`` and ``filter_name=`` keywords, float32 output
of shape (n_slices, n_cols, n_cols) in attenuation per pixel. Unlike TomoPy's gridrec, the
sinogram is always padded (TomoPy's unpadded default has about 31 % RMSE on an analytic phantom,
see the README). Arguments this implementation does not use (``ncore``, ``nchunk``, ...) are
accepted and ignored; unknown algorithms raise ValueError listing the supported ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .centre import find_center_pc as _find_center_pc
from .centre import find_center_vo as _find_center_vo
from .filters import circular_mask
from .pipeline import reconstruct_block
from .preprocess import minus_log as _minus_log
from .preprocess import normalize as _normalize
from .preprocess import remove_stripe_fw as _remove_stripe_fw
from .preprocess import remove_stripe_sorting

__all__ = [
    "angles",
    "circ_mask",
    "find_center_pc",
    "find_center_vo",
    "minus_log",
    "normalize",
    "recon",
    "remove_stripe_based_sorting",
    "remove_stripe_fw",
]

_ALGORITHMS = {"gridrec": "gridrec", "fbp": "fbp", "sirt": "sirt", "cgls": "cgls"}
_FILTERS = {"ramlak": "ramp", "ramp": "ramp", "shepp": "shepp", "cosine": "cosine",
            "hann": "hann", "hamming": "hamming", "parzen": "parzen", "none": "none"}


def angles(nang: int, ang1: float = 0.0, ang2: float = 180.0) -> np.ndarray:
    """Like ``tomopy.angles``: ``nang`` angles in radians from ang1 to ang2 degrees, end point
    *included* (TomoPy's convention; a Data Exchange /exchange/theta is better)."""
    return np.deg2rad(np.linspace(ang1, ang2, nang))


def normalize(arr: np.ndarray, flat: np.ndarray, dark: np.ndarray, cutoff: float | None = None,
              **_: Any) -> np.ndarray:
    """Like ``tomopy.normalize``: ``(arr - mean dark) / (mean flat - mean dark)``."""
    out = _normalize(arr, flat, dark)
    return np.minimum(out, cutoff) if cutoff is not None else out


def minus_log(arr: np.ndarray, **_: Any) -> np.ndarray:
    """Like ``tomopy.minus_log``."""
    return _minus_log(np.asarray(arr, dtype=np.float32))


def recon(
    tomo: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray | None = None,
    sinogram_order: bool = False,
    algorithm: str = "gridrec",
    init_recon: np.ndarray | None = None,
    filter_name: str = "shepp",
    num_iter: int | None = None,
    **_: Any,
) -> np.ndarray:
    """Like ``tomopy.recon`` for ``gridrec``, ``fbp``, ``sirt`` and ``cgls``.

    Parameters
    ----------
    tomo : ndarray of shape (n_proj, n_rows, n_cols), or (n_rows, n_proj, n_cols) if
        ``sinogram_order``
        Line integrals.
    theta : ndarray of shape (n_proj,)
        Radians.
    center : float or ndarray of shape (n_rows,), optional
        Rotation axis in pixels; default ``n_cols / 2`` (TomoPy's default).
    algorithm : str
        gridrec, fbp, sirt or cgls.
    filter_name : str
        ramlak (or ramp), shepp, cosine, hann, hamming, parzen, none.
    num_iter : int, optional
        Iterations for sirt / cgls.

    Returns
    -------
    ndarray of shape (n_rows, n_cols, n_cols), float32
    """
    if algorithm not in _ALGORITHMS:
        raise ValueError(
            f"algorithm {algorithm!r} is not provided; supported: {', '.join(_ALGORITHMS)}"
        )
    if filter_name not in _FILTERS:
        raise ValueError(f"filter_name {filter_name!r} is not provided; supported: {', '.join(_FILTERS)}")
    if init_recon is not None:
        raise ValueError("init_recon is not supported; start iterative methods from zero")
    sino = np.asarray(tomo, dtype=np.float32)
    if sino.ndim == 2:
        sino = sino[:, None, :] if not sinogram_order else sino[None]
    if not sinogram_order:
        sino = np.ascontiguousarray(np.swapaxes(sino, 0, 1))
    n_rows, n_cols = sino.shape[0], sino.shape[2]
    centers = np.full(n_rows, n_cols / 2.0) if center is None else np.broadcast_to(
        np.asarray(center, dtype=np.float64), (n_rows,))
    out = np.empty((n_rows, n_cols, n_cols), dtype=np.float32)
    for c in np.unique(centers):
        idx = np.flatnonzero(centers == c)
        rec, _ = reconstruct_block(sino[idx], theta, float(c), _ALGORITHMS[algorithm],
                                   _FILTERS[filter_name], n_iter=num_iter)
        out[idx] = rec
    return out


def find_center_vo(tomo: np.ndarray, ind: int | None = None, smin: float = -50, smax: float = 50,
                   srad: float = 6, step: float = 0.25, ratio: float = 0.5, **_: Any) -> float:
    """Like ``tomopy.find_center_vo`` (``tomo`` in projection order, ``-log`` data)."""
    tomo = np.asarray(tomo, dtype=np.float32)
    ind = tomo.shape[1] // 2 if ind is None else ind
    sino = tomo[:, ind, :]
    n = sino.shape[1]
    mid = n / 2.0
    # candidates near the detector edges replace most of the flipped sinogram: keep the middle half
    start, stop = max(mid + smin, n / 4.0), min(mid + smax, 3.0 * n / 4.0)
    return _find_center_vo(sino, start, stop, step=step, radius=srad, ratio=ratio).center


def find_center_pc(proj1: np.ndarray, proj2: np.ndarray, **_: Any) -> float:
    """Like ``tomopy.find_center_pc``: centre from projections at 0 and 180 degrees."""
    return _find_center_pc(proj1, proj2)


def remove_stripe_fw(tomo: np.ndarray, level: int | None = None, wname: str = "db5",
                     sigma: float = 2, **_: Any) -> np.ndarray:
    """Like ``tomopy.remove_stripe_fw`` (projection order in and out)."""
    sino = np.swapaxes(np.asarray(tomo, dtype=np.float32), 0, 1)
    return np.swapaxes(_remove_stripe_fw(sino, level, wname, sigma), 0, 1)


def remove_stripe_based_sorting(tomo: np.ndarray, size: int | None = None, **_: Any) -> np.ndarray:
    """Like ``tomopy.remove_stripe_based_sorting`` (projection order in and out)."""
    sino = np.swapaxes(np.asarray(tomo, dtype=np.float32), 0, 1)
    return np.swapaxes(remove_stripe_sorting(sino, size or 21), 0, 1)


def circ_mask(arr: np.ndarray, axis: int = 0, ratio: float = 1.0, val: float = 0.0, **_: Any) -> np.ndarray:
    """Like ``tomopy.circ_mask`` for axis 0 (slices)."""
    if axis != 0:
        raise ValueError("only axis=0 (a stack of square slices) is supported")
    arr = np.array(arr, copy=True)
    mask = circular_mask(arr.shape[-1], ratio)
    arr[:, ~mask] = val
    return arr
