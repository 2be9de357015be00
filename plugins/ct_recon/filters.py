"""Reconstruction filters, detector padding, angular weights and the circular mask.

Every function takes an ``xp`` array module (numpy or cupy) where it allocates arrays, so the
GPU path shares this code.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import scipy.fft

__all__ = [
    "FILTERS",
    "PAD_MODES",
    "angle_weights",
    "check_filter",
    "circular_mask",
    "filter_response",
    "pad_sinogram",
    "padded_length",
]

#: Filter names accepted by every algorithm, as in TomoPy and scikit-image.
FILTERS = ("ramp", "shepp", "cosine", "hann", "hamming", "parzen", "none")
#: How the detector is extended before filtering: ``edge`` repeats the border pixels
#: (objects wider than the field of view), ``zero`` pads with zeros.
PAD_MODES = ("edge", "zero")


def check_filter(filter_name: str) -> str:
    """Return ``filter_name`` normalized, or raise ValueError listing the allowed names."""
    name = str(filter_name).lower()
    aliases = {"ram-lak": "ramp", "ramlak": "ramp", "shepp-logan": "shepp", "hanning": "hann"}
    name = aliases.get(name, name)
    if name not in FILTERS:
        raise ValueError(
            f"unknown filter {filter_name!r}; allowed: {', '.join(FILTERS)}"
        )
    return name


def padded_length(n_det: int, pad_factor: float = 2.0) -> int:
    """FFT length used for filtering: the next fast length >= ``pad_factor * n_det``.

    A factor of 2 makes the circular convolution with the ramp kernel equal to the linear one
    over the whole detector (no wrap-around, the cause of TomoPy's unpadded cupping).
    """
    if pad_factor < 1.0:
        raise ValueError(f"pad_factor must be >= 1 (2 avoids wrap-around), got {pad_factor}")
    n = int(np.ceil(max(pad_factor, 1.0) * n_det))
    n += n % 2
    while scipy.fft.next_fast_len(n) != n or n % 2:
        n = scipy.fft.next_fast_len(n + 1)
    return n


def filter_response(
    n_pad: int, filter_name: str = "ramp", xp: ModuleType = np, dtype: Any = np.float32
) -> Any:
    """Frequency response of a reconstruction filter on an ``n_pad``-point FFT grid.

    Parameters
    ----------
    n_pad : int
        FFT length (detector pixels after padding).
    filter_name : str
        One of :data:`FILTERS`. ``ramp`` is Ram-Lak; the others multiply it by a window of the
        normalized frequency ``f`` in cycles per pixel (``|f| <= 1/2``): shepp ``sinc(f)``,
        cosine ``cos(pi f)``, hann ``(1 + cos 2 pi f) / 2``, hamming ``0.54 + 0.46 cos 2 pi f``,
        parzen the Parzen window of ``2 |f|``. ``none`` is the identity (no filtering; for
        back-projection only).

    Returns
    -------
    ndarray of shape (n_pad,)
        Real response in FFT order.

    Notes
    -----
    The ramp is the DFT of the band-limited spatial kernel (``h[0] = 1/4``,
    ``h[n] = -1/(pi n)^2`` for odd ``n``, 0 for even ``n``; Kak & Slaney 1988, eq. 3.61). Unlike
    ``|f|`` sampled on the grid it has the right, non-zero, DC value, so there is no offset.
    With back-projection weights summing to pi (:func:`angle_weights`) the result is attenuation
    per pixel.
    """
    name = check_filter(filter_name)
    f = np.fft.fftfreq(n_pad)
    if name == "none":
        return xp.asarray(np.ones(n_pad), dtype=dtype)
    n = np.concatenate([np.arange(0, n_pad // 2 + 1), np.arange(-(n_pad // 2) + 1, 0)])
    h = np.zeros(n_pad)
    h[0] = 0.25
    odd = n % 2 == 1
    h[odd] = -1.0 / (np.pi * n[odd]) ** 2
    resp = np.real(np.fft.fft(h))
    af = np.abs(f)
    if name == "shepp":
        resp *= np.sinc(f)
    elif name == "cosine":
        resp *= np.cos(np.pi * f)
    elif name == "hann":
        resp *= 0.5 * (1.0 + np.cos(2.0 * np.pi * f))
    elif name == "hamming":
        resp *= 0.54 + 0.46 * np.cos(2.0 * np.pi * f)
    elif name == "parzen":
        u = 2.0 * af
        resp *= np.where(u <= 0.5, 1.0 - 6.0 * u**2 * (1.0 - u), 2.0 * (1.0 - u) ** 3)
    return xp.asarray(resp, dtype=dtype)


def pad_sinogram(sino: Any, n_pad: int, mode: str = "edge", xp: ModuleType = np) -> tuple[Any, int]:
    """Pad the last (detector) axis to ``n_pad`` columns, centred.

    Parameters
    ----------
    sino : ndarray of shape (..., n_det)
        Sinogram(s).
    n_pad : int
        Output width.
    mode : {"edge", "zero"}
        See :data:`PAD_MODES`.

    Returns
    -------
    padded : ndarray of shape (..., n_pad)
    left : int
        Columns added on the left; detector column ``k`` is padded column ``k + left``.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"unknown pad mode {mode!r}; allowed: {', '.join(PAD_MODES)}")
    n_det = sino.shape[-1]
    left = (n_pad - n_det) // 2
    right = n_pad - n_det - left
    widths = [(0, 0)] * (sino.ndim - 1) + [(left, right)]
    padded = xp.pad(sino, widths, mode="edge" if mode == "edge" else "constant")
    return padded, left


def angle_weights(theta: np.ndarray) -> np.ndarray:
    """Quadrature weights (radians) of the projection angles for back-projection.

    Angles are reduced modulo pi and each gets half the gap to its neighbours, so the
    weights sum to pi. For ``n`` equally spaced angles over 180 or 360 degrees this is
    ``pi / n`` for every angle; irregular or missing angles are handled correctly.

    Parameters
    ----------
    theta : ndarray of shape (n_angles,)
        Angles in radians.

    Returns
    -------
    ndarray of shape (n_angles,), float64
    """
    theta = np.asarray(theta, dtype=np.float64)
    n = theta.size
    if n == 1:
        return np.array([np.pi])
    t = np.mod(theta, np.pi)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    prev = np.roll(ts, 1)
    prev[0] -= np.pi
    nxt = np.roll(ts, -1)
    nxt[-1] += np.pi
    w = np.empty(n)
    w[order] = 0.5 * (nxt - prev)
    if np.allclose(w, w.mean(), rtol=1e-3, atol=0.0):
        return np.full(n, np.pi / n)
    return w


def circular_mask(n: int, ratio: float = 1.0, xp: ModuleType = np) -> Any:
    """Boolean disc of radius ``ratio * n / 2`` about the image centre ``(n - 1) / 2``."""
    c = (n - 1) / 2.0
    r = np.arange(n) - c
    return xp.asarray(r[:, None] ** 2 + r[None, :] ** 2 <= (ratio * n / 2.0) ** 2)
