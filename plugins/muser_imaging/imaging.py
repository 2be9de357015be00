"""Dirty images and PSFs with ``ducc0.wgridder``, weighting, and a direct-DFT reference.

Image convention (hisci, ``shared/research/muser.md`` section 5): ``img[iy, ix]``,
N x N with N even, phase centre at pixel (N/2, N/2), ``l = -(ix - N/2) cell`` (east to
the left) and ``m = (iy - N/2) cell`` (north up when drawn with ``origin="lower"``).

    I_D(l, m) = (1 / W) sum_k w_k Re[V_k exp(+2 pi i (u_k l + v_k m + w_k (n - 1)))]

``ducc0.wgridder.vis2dirty(..., flip_u=True, flip_w=True, divide_by_n=False)`` returns
this image indexed [x, y]; the hisci image is its transpose. (Arras et al. 2021, A&A
646, A58, doi:10.1051/0004-6361/202039723; Ye et al. 2022, A&A 668, A184.)
"""

from __future__ import annotations

import numpy as np

from .geometry import ARCSEC, C_LIGHT

WEIGHTINGS = ("natural", "uniform")


#: The ducc0 flags that give the hisci orientation (muser.md): one place for both directions.
ORIENTATION_FLAGS = {"flip_u": True, "flip_w": True, "divide_by_n": False}


def _ducc():
    import ducc0.wgridder

    return ducc0.wgridder


def visibility_weights(
    uvw_metres: np.ndarray,
    freq_hz: float,
    valid: np.ndarray,
    weighting: str,
    npix: int,
    cell_rad: float,
) -> np.ndarray:
    """Imaging weights per visibility.

    Parameters
    ----------
    uvw_metres : ndarray, shape (B, 3)
    freq_hz : float
    valid : ndarray of bool, shape (B,)
        Unflagged visibilities (the others get weight 0).
    weighting : {"natural", "uniform"}
        Natural: 1 per visibility. Uniform: 1 / (number of visibilities, counting the
        Hermitian conjugates, in the visibility's uv cell of size ``1 / (npix cell)``).
    npix : int
    cell_rad : float

    Returns
    -------
    ndarray of float64, shape (B,)
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    w = np.asarray(valid, dtype=np.float64)
    if weighting == "natural":
        return w
    du = 1.0 / (npix * cell_rad)
    uv = uvw_metres[:, :2] * (freq_hz / C_LIGHT) / du
    cells = np.rint(np.concatenate([uv, -uv])).astype(np.int64)
    keys = cells[:, 0] * 1_000_003 + cells[:, 1]
    both = np.concatenate([w, w])
    uniq, inv = np.unique(keys, return_inverse=True)
    counts = np.bincount(inv, weights=both, minlength=len(uniq))
    n = counts[inv[: len(w)]]
    return np.where(w > 0, 1.0 / np.maximum(n, 1e-300), 0.0)


def dirty_image(
    uvw_metres: np.ndarray,
    freq_hz: float,
    vis: np.ndarray,
    weights: np.ndarray,
    npix: int,
    cell_rad: float,
    *,
    w_correction: bool = True,
    epsilon: float = 1e-5,
    nthreads: int = 1,
    single: bool = False,
) -> np.ndarray:
    """Dirty image of one channel, normalised so that a point source of flux S peaks at S.

    Parameters
    ----------
    uvw_metres : ndarray, shape (B, 3)
        Baseline uvw in metres (baseline ``r_j - r_i``).
    freq_hz : float
        Channel frequency.
    vis : ndarray of complex, shape (B,)
        Calibrated visibilities.
    weights : ndarray, shape (B,)
        Imaging weights (0 = flagged).
    npix : int
        Image size N (even).
    cell_rad : float
        Pixel size, radians.
    w_correction : bool
        Exact w-term (ducc0 w-gridding); False images with w = 0.
    epsilon : float
        ducc0 accuracy.
    nthreads : int
        ducc0 threads.
    single : bool
        Grid in complex64/float32 (about twice faster).

    Returns
    -------
    ndarray of float64 (float32 if ``single``), shape (N, N)
        ``img[iy, ix]`` in the hisci orientation.
    """
    if npix % 2:
        raise ValueError(f"image size must be even, got {npix}")
    total = float(np.sum(weights))
    if total <= 0:
        return np.full((npix, npix), np.nan, np.float32 if single else np.float64)
    cdt, rdt = (np.complex64, np.float32) if single else (np.complex128, np.float64)
    img = _ducc().vis2dirty(
        uvw=np.ascontiguousarray(uvw_metres, dtype=np.float64),
        freq=np.array([freq_hz], dtype=np.float64),
        vis=np.ascontiguousarray(np.asarray(vis, cdt)[:, None]),
        wgt=np.ascontiguousarray(np.asarray(weights, rdt)[:, None]),
        npix_x=npix,
        npix_y=npix,
        pixsize_x=cell_rad,
        pixsize_y=cell_rad,
        epsilon=epsilon,
        do_wgridding=w_correction,
        nthreads=nthreads,
        **ORIENTATION_FLAGS,
    )
    out = np.ascontiguousarray(img.T)
    out /= rdt(total)
    return out


def psf_image(
    uvw_metres: np.ndarray,
    freq_hz: float,
    weights: np.ndarray,
    npix: int,
    cell_rad: float,
    **kwargs,
) -> np.ndarray:
    """PSF (dirty beam) on a 2N x 2N grid, peak 1 at pixel (N, N).

    Same call as :func:`dirty_image` with all visibilities equal to 1, so that it can
    be shifted to any pixel of the N x N image. Keyword arguments go to
    :func:`dirty_image`.
    """
    ones = np.ones(len(uvw_metres), np.complex128)
    return dirty_image(uvw_metres, freq_hz, ones, weights, 2 * npix, cell_rad, **kwargs)


def pixel_lm(npix: int, cell_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """Direction cosines of the pixel centres, each of shape (N, N), indexed [iy, ix]."""
    ix = np.arange(npix)
    l = -(ix - npix // 2) * cell_rad
    m = (ix - npix // 2) * cell_rad
    return np.meshgrid(l, m)


def dft_image(
    uvw_metres: np.ndarray,
    freq_hz: float,
    vis: np.ndarray,
    weights: np.ndarray,
    npix: int,
    cell_rad: float,
    *,
    w_correction: bool = True,
) -> np.ndarray:
    """Direct Fourier sum of the dirty image (reference for tests; slow, use small N)."""
    uvw = np.asarray(uvw_metres) * (freq_hz / C_LIGHT)
    l, m = pixel_lm(npix, cell_rad)
    n1 = np.sqrt(1.0 - l * l - m * m) - 1.0
    out = np.zeros((npix, npix))
    for k in np.flatnonzero(weights):
        u, v, w = uvw[k]
        phase = u * l + v * m + (w * n1 if w_correction else 0.0)
        out += weights[k] * (vis[k] * np.exp(2j * np.pi * phase)).real
    return out / np.sum(weights)


def lm_to_pixel(l_arcsec: float, m_arcsec: float, npix: int, cell_arcsec: float):
    """Pixel (ix, iy), fractional, of an offset east ``l`` and north ``m`` (arcsec)."""
    return npix / 2 - l_arcsec / cell_arcsec, npix / 2 + m_arcsec / cell_arcsec


def cell_radians(cell_arcsec: float) -> float:
    """Arcsec to radians."""
    return float(cell_arcsec) * ARCSEC


def predict_visibilities(
    model: np.ndarray,
    uvw_metres: np.ndarray,
    freq_hz: float,
    cell_rad: float,
    *,
    w_correction: bool = True,
    epsilon: float = 1e-5,
    nthreads: int = 1,
    single: bool = False,
) -> np.ndarray:
    """Model visibilities ``sum_p M_p exp(-2 pi i (u l_p + v m_p + w (n_p - 1)))``.

    The adjoint of :func:`dirty_image` (without weights and normalisation), through
    ``ducc0.wgridder.dirty2vis`` with the same flags.

    Parameters
    ----------
    model : ndarray, shape (N, N)
        Flux per pixel, ``img[iy, ix]`` orientation.

    Returns
    -------
    ndarray of complex, shape (B,)
    """
    rdt = np.float32 if single else np.float64
    npix = model.shape[0]
    vis = _ducc().dirty2vis(
        uvw=np.ascontiguousarray(uvw_metres, dtype=np.float64),
        freq=np.array([freq_hz], dtype=np.float64),
        dirty=np.ascontiguousarray(np.asarray(model, rdt).T),
        pixsize_x=cell_rad,
        pixsize_y=cell_rad,
        epsilon=epsilon,
        do_wgridding=w_correction,
        nthreads=nthreads,
        **ORIENTATION_FLAGS,
    )
    assert model.shape == (npix, npix)
    return vis[:, 0]


def predict_sparse(
    model: np.ndarray,
    uvw_metres: np.ndarray,
    freq_hz: float,
    cell_rad: float,
    *,
    w_correction: bool = True,
) -> np.ndarray:
    """Model visibilities by a direct sum over the nonzero model pixels (CLEAN components).

    Same result as :func:`predict_visibilities` (exactly, without gridding error) and
    much cheaper for a few hundred components.

    Parameters
    ----------
    model : ndarray, shape (N, N)
        Flux per pixel, ``img[iy, ix]`` orientation.

    Returns
    -------
    ndarray of complex128, shape (B,)
    """
    npix = model.shape[0]
    iy, ix = np.nonzero(model)
    if len(iy) == 0:
        return np.zeros(len(uvw_metres), np.complex128)
    flux = model[iy, ix].astype(np.float64)
    l = -(ix - npix // 2) * cell_rad
    m = (iy - npix // 2) * cell_rad
    n1 = np.sqrt(1.0 - l * l - m * m) - 1.0 if w_correction else np.zeros_like(l)
    uvw = np.asarray(uvw_metres, dtype=np.float64) * (freq_hz / C_LIGHT)
    phase = uvw[:, :1] * l + uvw[:, 1:2] * m + uvw[:, 2:3] * n1  # (B, K)
    return np.exp(-2j * np.pi * phase) @ flux


def dirty_images_xp(
    uvw_lambda,
    vis,
    weights,
    npix: int,
    cell_rad: float,
    *,
    w_correction: bool = True,
    xp=np,
    chunk: int = 65536,
):
    """Dirty images by a direct Fourier sum through ``xp`` (numpy, or cupy on a GPU).

    Exact (no gridding kernel), O(N^2 B) per image: meant for a GPU, where it replaces
    ducc0; on a CPU use :func:`dirty_image`.

    Parameters
    ----------
    uvw_lambda : array, shape (M, B, 3)
        uvw in wavelengths of each image's channel.
    vis, weights : array, shape (M, B)
    npix : int
    cell_rad : float or array of shape (M,)
    w_correction : bool
    xp : module
    chunk : int
        Pixels per block (bounds the temporary of shape (M, B, chunk)).

    Returns
    -------
    array of ``xp``, float32, shape (M, N, N)
        Same normalisation and orientation as :func:`dirty_image`.
    """
    uvw = xp.asarray(uvw_lambda, dtype=xp.float32)
    wv = xp.asarray(weights, dtype=xp.float32) * xp.asarray(vis, dtype=xp.complex64)
    total = xp.asarray(weights, dtype=xp.float32).sum(axis=1)
    m_img = uvw.shape[0]
    cells = xp.broadcast_to(xp.asarray(cell_rad, dtype=xp.float64), (m_img,))
    pix = xp.arange(npix * npix)
    out = xp.empty((m_img, npix * npix), dtype=xp.float32)
    for start in range(0, npix * npix, chunk):
        p = pix[start:start + chunk]
        iy, ix = p // npix, p % npix
        l = (-(ix - npix // 2))[None, :] * cells[:, None]
        m = (iy - npix // 2)[None, :] * cells[:, None]
        n1 = xp.sqrt(1.0 - l * l - m * m) - 1.0 if w_correction else xp.zeros_like(l)
        l, m, n1 = (a.astype(xp.float32) for a in (l, m, n1))
        phase = (uvw[:, :, 0:1] * l[:, None, :] + uvw[:, :, 1:2] * m[:, None, :]
                 + uvw[:, :, 2:3] * n1[:, None, :])
        phase = phase - xp.floor(phase)  # keep float32 accuracy
        e = xp.exp((2j * np.pi) * phase.astype(xp.complex64))
        out[:, start:start + chunk] = xp.einsum("mb,mbp->mp", wv, e).real
    return (out / total[:, None]).reshape(m_img, npix, npix)
