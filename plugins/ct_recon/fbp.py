"""Filtered back-projection in real space (linear interpolation), on numpy/numba or cupy.

Same geometry and units as :mod:`.fourier`. The filtering is an FFT convolution on the padded
detector; the back-projection is pixel-driven with linear interpolation between detector
columns (the classic FBP of Kak & Slaney 1988, ch. 3). On the CPU the back-projection is a
numba kernel parallel over image rows; with ``xp = cupy`` the filtering uses cupy.fft and the
back-projection a CUDA kernel (one thread per pixel), so a GPU worker runs the same function.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .filters import angle_weights, filter_response, pad_sinogram, padded_length

__all__ = ["backproject", "fbp_reconstruct", "filter_sinograms"]


def filter_sinograms(
    sinograms: Any,
    filter_name: str = "ramp",
    *,
    pad_factor: float = 2.0,
    pad_mode: str = "edge",
    xp: ModuleType = np,
) -> tuple[Any, int]:
    """Filter sinograms along the detector axis with zero-wrap padding.

    Parameters
    ----------
    sinograms : ndarray of shape (n_slices, n_angles, n_det)
    filter_name : str
        See :data:`.filters.FILTERS`.
    pad_factor, pad_mode
        See :func:`.filters.padded_length`, :func:`.filters.pad_sinogram`.
    xp : module
        numpy or cupy.

    Returns
    -------
    filtered : ndarray of shape (n_slices, n_angles, P), float32
        Filtered, still padded (the back-projection reads past the detector edge).
    left : int
        Padded column of detector column 0.
    """
    n_det = sinograms.shape[-1]
    P = padded_length(n_det, pad_factor)
    padded, left = pad_sinogram(xp.asarray(sinograms, dtype=xp.float32), P, pad_mode, xp=xp)
    resp = filter_response(P, filter_name, xp=xp, dtype=xp.float32)
    if xp is np:
        import scipy.fft

        spec = scipy.fft.rfft(padded, axis=-1, workers=-1)
        spec *= resp[: P // 2 + 1]
        out = scipy.fft.irfft(spec, n=P, axis=-1, workers=-1)
    else:
        spec = xp.fft.rfft(padded, axis=-1)
        spec *= resp[: P // 2 + 1]
        out = xp.fft.irfft(spec, n=P, axis=-1)
    return out.astype(xp.float32, copy=False), left


_NUMBA_KERNEL = None


def _numba_kernel() -> Any:
    global _NUMBA_KERNEL
    if _NUMBA_KERNEL is None:
        import numba

        @numba.njit(parallel=True, fastmath=True, cache=False)
        def kernel(q, cos, sin, w, origin, c_img, out):  # pragma: no cover - compiled
            n_sl, n_ang, P = q.shape
            n = out.shape[1]
            for idx in numba.prange(n_sl * n):
                sl = idx // n
                i = idx % n
                y = c_img - i
                row = out[sl, i]
                for a in range(n_ang):
                    ca = cos[a]
                    t = (-c_img) * ca + y * sin[a] + origin
                    wa = w[a]
                    qa = q[sl, a]
                    for j in range(n):
                        k = int(np.floor(t))
                        if 0 <= k < P - 1:
                            fr = t - k
                            row[j] += wa * (qa[k] + fr * (qa[k + 1] - qa[k]))
                        t += ca

        _NUMBA_KERNEL = kernel
    return _NUMBA_KERNEL


_CUDA_SOURCE = r"""
extern "C" __global__
void backproject(const float* q, const float* cs, const float* sn, const float* w,
                 float origin, float c_img, int n_sl, int n_ang, int P, int n, float* out) {
    long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    long total = (long)n_sl * n * n;
    if (idx >= total) return;
    int j = idx % n;
    int i = (idx / n) % n;
    int sl = idx / ((long)n * n);
    float x = j - c_img, y = c_img - i, acc = 0.f;
    const float* qs = q + (long)sl * n_ang * P;
    for (int a = 0; a < n_ang; ++a) {
        float t = x * cs[a] + y * sn[a] + origin;
        int k = (int)floorf(t);
        if (k >= 0 && k < P - 1) {
            float fr = t - k;
            const float* qa = qs + (long)a * P;
            acc += w[a] * (qa[k] + fr * (qa[k + 1] - qa[k]));
        }
    }
    out[idx] = acc;
}
"""


def backproject(
    filtered: Any,
    theta: np.ndarray,
    origin: float,
    n_img: int,
    xp: ModuleType = np,
) -> Any:
    """Pixel-driven linear-interpolation back-projection.

    Parameters
    ----------
    filtered : ndarray of shape (n_slices, n_angles, P)
        Filtered (padded) sinograms.
    theta : ndarray of shape (n_angles,)
        Angles in radians.
    origin : float
        Column of ``filtered`` where ``s = 0`` (the rotation axis: ``center + left``).
    n_img : int
        Output width.
    xp : module
        numpy (numba kernel) or cupy (CUDA kernel).

    Returns
    -------
    ndarray of shape (n_slices, n_img, n_img), float32
        ``sum_a w_a q_a(x cos theta_a + y sin theta_a)`` with ``w`` from
        :func:`.filters.angle_weights`.
    """
    theta = np.asarray(theta, dtype=np.float64)
    w = angle_weights(theta)
    c_img = (n_img - 1) / 2.0
    n_sl, n_ang, P = filtered.shape
    if xp is np:
        out = np.zeros((n_sl, n_img, n_img), dtype=np.float32)
        _numba_kernel()(
            np.ascontiguousarray(filtered, dtype=np.float32),
            np.cos(theta),
            np.sin(theta),
            w,
            float(origin),
            float(c_img),
            out,
        )
        return out
    kernel = xp.RawKernel(_CUDA_SOURCE, "backproject")
    out = xp.zeros((n_sl, n_img, n_img), dtype=xp.float32)
    total = n_sl * n_img * n_img
    threads = 256
    kernel(
        ((total + threads - 1) // threads,),
        (threads,),
        (
            xp.ascontiguousarray(filtered, dtype=xp.float32),
            xp.asarray(np.cos(theta), dtype=xp.float32),
            xp.asarray(np.sin(theta), dtype=xp.float32),
            xp.asarray(w, dtype=xp.float32),
            np.float32(origin),
            np.float32(c_img),
            np.int32(n_sl),
            np.int32(n_ang),
            np.int32(P),
            np.int32(n_img),
            out,
        ),
    )
    return out


def fbp_reconstruct(
    sinograms: Any,
    theta: np.ndarray,
    center: float | None = None,
    filter_name: str = "ramp",
    *,
    n_img: int | None = None,
    pad_factor: float = 2.0,
    pad_mode: str = "edge",
    xp: ModuleType = np,
) -> Any:
    """Filtered back-projection of a block of sinograms.

    Parameters
    ----------
    sinograms : ndarray of shape (n_slices, n_angles, n_det) or (n_angles, n_det)
        Line integrals.
    theta : ndarray of shape (n_angles,)
        Angles in radians.
    center : float, optional
        Rotation axis in detector pixels; default ``(n_det - 1) / 2``.
    filter_name : str
        See :data:`.filters.FILTERS`.
    n_img : int, optional
        Output width; default ``n_det``.
    pad_factor, pad_mode
        Detector padding.
    xp : module
        numpy (CPU) or cupy (GPU); the result is an ``xp`` array.

    Returns
    -------
    ndarray of shape (n_slices, n_img, n_img) or (n_img, n_img), float32
        Attenuation per pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from hisci.builtin_plugins.ct_recon import phantom
    >>> theta = np.linspace(0, np.pi, 90, endpoint=False)
    >>> sino = phantom.line_integrals(phantom.shepp_logan_ellipses(64), theta, 64)
    >>> fbp_reconstruct(sino, theta).shape
    (64, 64)
    """
    single = sinograms.ndim == 2
    sino = sinograms[None] if single else sinograms
    if sino.ndim != 3:
        raise ValueError(f"sinograms must be (n_angles, n_det) or (n_slices, n_angles, n_det), got {sino.shape}")
    theta = np.asarray(theta, dtype=np.float64)
    if theta.size != sino.shape[1]:
        raise ValueError(f"theta has {theta.size} angles but the sinogram has {sino.shape[1]} rows")
    n_det = sino.shape[-1]
    n_img = n_det if n_img is None else int(n_img)
    c = (n_det - 1) / 2.0 if center is None else float(center)
    filtered, left = filter_sinograms(sino, filter_name, pad_factor=pad_factor, pad_mode=pad_mode, xp=xp)
    out = backproject(filtered, theta, c + left, n_img, xp=xp)
    return out[0] if single else out
