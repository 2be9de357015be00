"""The method of $name as a pure function: arrays and keyword parameters in, numbers out.

Replace ``find_peak`` with your own method. Keep it free of hisci: no RunContext, no
files, no plotting. plugin.py reads the inputs, calls this function and saves the outputs,
and tests/test_plugin.py can test the function directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy

POLARITIES = ("positive", "negative")


@dataclass(frozen=True)
class Peak:
    """The strongest peak of a spectrum (positions and widths in the units of ``x``)."""

    position: float
    height: float
    fwhm: float
    area: float
    smoothed: numpy.ndarray
    baseline: numpy.ndarray


def find_peak(
    x: Any,
    y: Any,
    *,
    window: int = 5,
    subtract_baseline: bool = True,
    polarity: str = "positive",
    xp: ModuleType = numpy,
) -> Peak:
    """Locate and measure the strongest peak of a sampled spectrum.

    Parameters
    ----------
    x : array of shape (N,)
        Sample positions, increasing (they are sorted if not).
    y : array of shape (N,)
        Signal at each position.
    window : int
        Width of the moving-average smoothing, in samples (odd, 1 = no smoothing).
    subtract_baseline : bool
        Remove the straight line through the mean of the first and last ``window``
        samples before measuring.
    polarity : {'positive', 'negative'}
        Look for a maximum (``positive``) or a minimum (``negative``) of ``y``.
    xp : module
        The array module (numpy, or cupy on a GPU worker).

    Returns
    -------
    Peak
        ``position`` refined by a parabola through the three highest samples,
        ``height`` above the baseline, ``fwhm`` by linear interpolation of the half-height
        crossings (NaN when the peak touches an edge), ``area`` by the trapezoid rule.

    Raises
    ------
    ValueError
        If the arrays differ in length or hold fewer than 3 samples, if ``window`` is not
        an odd number between 1 and N, or if ``polarity`` is unknown.

    Examples
    --------
    >>> x = numpy.linspace(0, 10, 201)
    >>> peak = find_peak(x, numpy.exp(-0.5 * (x - 4) ** 2), window=1, subtract_baseline=False)
    >>> round(peak.position, 6), round(peak.fwhm, 2)
    (4.0, 2.35)
    """
    x, y = numpy.asarray(_host(x), dtype=float), numpy.asarray(_host(y), dtype=float)
    _check(x, y, window, polarity)
    order = numpy.argsort(x, kind="stable")
    x, y = x[order], y[order]
    signal = xp.asarray(y if polarity == "positive" else -y)
    padded = xp.pad(signal, window // 2, mode="edge")
    smoothed = _host(xp.convolve(padded, xp.ones(window) / window, mode="valid"))
    baseline = _baseline(x, smoothed, window) if subtract_baseline else numpy.zeros_like(x)
    corrected = smoothed - baseline
    position, height = _refine_maximum(x, corrected)
    fwhm = _fwhm(x, corrected, int(numpy.argmax(corrected)), height)
    area = float(((corrected[1:] + corrected[:-1]) * numpy.diff(x)).sum() / 2)
    sign = 1.0 if polarity == "positive" else -1.0
    return Peak(position, sign * height, fwhm, sign * area, sign * smoothed, sign * baseline)


def _check(x: numpy.ndarray, y: numpy.ndarray, window: int, polarity: str) -> None:
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D arrays of the same length, got shapes {x.shape} and {y.shape}")
    if x.size < 3:
        raise ValueError(f"the spectrum needs at least 3 samples, got {x.size}")
    if int(window) != window or window < 1 or window % 2 == 0 or window > x.size:
        raise ValueError(f"window must be an odd number from 1 to {x.size}, got {window}")
    if polarity not in POLARITIES:
        raise ValueError(f"polarity {polarity!r} is unknown; use one of {', '.join(POLARITIES)}")


def _host(array: Any) -> Any:
    """A numpy view of a cupy array (numpy arrays and lists pass through)."""
    return array.get() if hasattr(array, "get") and not isinstance(array, numpy.ndarray) else array


def _baseline(x: numpy.ndarray, signal: numpy.ndarray, window: int) -> numpy.ndarray:
    left, right = signal[:window].mean(), signal[-window:].mean()
    x0, x1 = x[:window].mean(), x[-window:].mean()
    slope = (right - left) / (x1 - x0) if x1 != x0 else 0.0
    return left + slope * (x - x0)


def _refine_maximum(x: numpy.ndarray, signal: numpy.ndarray) -> tuple[float, float]:
    i = int(numpy.argmax(signal))
    if i == 0 or i == signal.size - 1:
        return float(x[i]), float(signal[i])
    before, top, after = signal[i - 1], signal[i], signal[i + 1]
    curvature = before - 2 * top + after
    shift = 0.5 * (before - after) / curvature if curvature != 0 else 0.0
    step = (x[i + 1] - x[i - 1]) / 2
    return float(x[i] + shift * step), float(top - 0.25 * (before - after) * shift)


def _fwhm(x: numpy.ndarray, signal: numpy.ndarray, top: int, height: float) -> float:
    half = height / 2
    left = _crossing(x, signal, top, half, -1)
    right = _crossing(x, signal, top, half, +1)
    return float(right - left) if left is not None and right is not None else float("nan")


def _crossing(x: numpy.ndarray, signal: numpy.ndarray, start: int, level: float, step: int) -> float | None:
    i = start
    while 0 <= i + step < signal.size:
        j = i + step
        if signal[j] < level:
            return float(x[i] + (x[j] - x[i]) * (signal[i] - level) / (signal[i] - signal[j]))
        i = j
    return None
