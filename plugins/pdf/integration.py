"""Azimuthal integration of 2-D powder images with pyFAI, plus masking helpers.

Everything that integrates goes through ``pyFAI.integrator.azimuthal.AzimuthalIntegrator``
(``integrate1d`` / ``sigma_clip_ng``); this module only loads geometry, builds masks,
checks shapes and keeps one integrator so that pyFAI's CSR look-up table, built on the
first frame, is reused for every further frame.

References
----------
G. Ashiotis et al., "The fast azimuthal integration Python library: pyFAI",
J. Appl. Cryst. 48 (2015) 510-519, doi:10.1107/S1600576715004306.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["METHODS", "Integrator1D", "auto_mask", "combine_masks", "load_geometry"]

#: pixel-splitting choices -> pyFAI method tuples (all CSR sparse matrix, cython)
METHODS = {
    "full": ("full", "csr", "cython"),
    "bbox": ("bbox", "csr", "cython"),
    "no": ("no", "csr", "cython"),
}


def load_geometry(poni_path: str | Path):
    """Load a pyFAI .poni file into an AzimuthalIntegrator.

    Parameters
    ----------
    poni_path : str or Path
        PONI v1/v2 text file (Distance, Poni1, Poni2 in m; Rot1-3 in rad; Wavelength in m).

    Returns
    -------
    pyFAI.integrator.azimuthal.AzimuthalIntegrator

    Raises
    ------
    ValueError
        The file is missing, does not parse, or lacks a wavelength or pixel size; the
        message names the file.
    """
    import pyFAI

    path = Path(poni_path)
    if not path.is_file():
        raise ValueError(f"poni file {path.name!r}: not found")
    try:
        ai = pyFAI.load(str(path))
    except Exception as exc:  # noqa: BLE001 - pyFAI raises many types for malformed text
        raise ValueError(
            f"poni file {path.name!r} does not parse as a pyFAI geometry ({type(exc).__name__}: "
            f"{exc}); expected 'Distance:', 'Poni1:', 'Poni2:', 'Rot1-3:', 'Wavelength:' lines "
            "as written by pyFAI-calib2"
        ) from None
    problems = []
    if not ai.wavelength:
        problems.append("no Wavelength")
    if not ai.dist or not np.isfinite(ai.dist):
        problems.append("no Distance")
    if ai.detector.pixel1 is None or ai.detector.pixel2 is None:
        problems.append("no pixel size (Detector_config pixel1/pixel2)")
    if problems:
        raise ValueError(
            f"poni file {path.name!r} does not parse as a complete pyFAI geometry: "
            f"{', '.join(problems)}; Q integration needs Distance, pixel size and Wavelength "
            "(as written by pyFAI-calib2)"
        )
    return ai


def auto_mask(
    image: np.ndarray,
    dead: bool = True,
    hot: bool = True,
    hot_factor: float = 50.0,
    beamstop_threshold: float | None = None,
) -> np.ndarray:
    """Automatic mask of dead, hot and beam-stop pixels (True = masked, pyFAI convention).

    Parameters
    ----------
    image : ndarray of shape (H, W)
        One raw frame (after dark subtraction if any).
    dead : bool
        Mask pixels ≤ 0 and non-finite ones.
    hot : bool
        Mask isolated hot pixels: value > hot_factor × the 5×5 median (and above
        the image's 99.9th percentile), which Bragg rings of a powder never reach.
    hot_factor : float
        Ratio to the local median that marks a pixel hot.
    beamstop_threshold : float, optional
        Also mask pixels below this value (the shadow of beam stop and arm).

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    from scipy.ndimage import median_filter

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"image: auto_mask needs a 2-D frame, got shape {img.shape}")
    mask = ~np.isfinite(img)
    if dead:
        mask |= img <= 0
    if hot:
        ceiling = np.percentile(img[np.isfinite(img)], 99.9)
        candidates = img > ceiling
        if candidates.any():
            med = median_filter(np.where(np.isfinite(img), img, 0), size=5, mode="nearest")
            mask |= candidates & (img > hot_factor * np.maximum(med, 1.0))
    if beamstop_threshold is not None:
        mask |= img < beamstop_threshold
    return mask


def combine_masks(shape: tuple[int, int], *masks: np.ndarray | None, names: tuple[str, ...] = ()) -> np.ndarray:
    """OR together masks of one detector shape (None entries are skipped).

    Raises
    ------
    ValueError
        A mask whose shape differs from ``shape``; the message names it by ``names``.
    """
    out = np.zeros(shape, dtype=bool)
    for i, m in enumerate(masks):
        if m is None:
            continue
        m = np.asarray(m)
        if m.shape != tuple(shape):
            label = names[i] if i < len(names) else f"mask #{i}"
            raise ValueError(
                f"{label}: shape {m.shape[0]}x{m.shape[1] if m.ndim > 1 else ''} does not match "
                f"the image shape {shape[0]}x{shape[1]}; give a mask of the same detector"
            )
        out |= m.astype(bool)
    return out


@dataclass
class Integration:
    """One integrated pattern: Q (Å⁻¹), intensity, optional σ and the bin weight.

    ``weight`` is pyFAI's summed normalisation per bin (≈ number of unmasked pixels,
    times solid angle and polarization); 0 marks an empty bin.
    """

    q: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray | None = None
    weight: np.ndarray | None = None

    def trimmed(self, min_fraction: float = 0.5) -> Integration:
        """Drop empty leading/trailing bins (beam stop, beyond the detector corner) and
        edge bins only partly covered (weight < min_fraction × the next bin inwards);
        interior empty bins become NaN."""
        if self.weight is None:
            return self
        w = np.asarray(self.weight, float)
        good = w > 0
        if good.sum() < 3:
            raise ValueError("integration: fewer than 3 non-empty Q bins (is the image masked?)")
        lo, hi = int(np.argmax(good)), int(good.size - np.argmax(good[::-1]))
        while hi - lo > 3 and w[lo] < min_fraction * w[lo + 1]:
            lo += 1
        while hi - lo > 3 and w[hi - 1] < min_fraction * w[hi - 2]:
            hi -= 1
        inten = np.where(good, self.intensity, np.nan)[lo:hi]
        sig = None if self.sigma is None else self.sigma[lo:hi]
        return Integration(self.q[lo:hi], inten, sig, w[lo:hi])


class Integrator1D:
    """pyFAI 1-D integration in Q (Å⁻¹) with a fixed mask, kept across frames.

    Parameters
    ----------
    ai : AzimuthalIntegrator
        From :func:`load_geometry`.
    shape : tuple of int
        Image shape (H, W); checked against the detector and every frame.
    npt : int
        Number of Q bins.
    mask : ndarray of bool, shape (H, W), optional
        True (non-zero) = masked.
    polarization : float or None
        pyFAI polarization factor in [-1, 1] (+1 horizontal); None = no correction.
    method : {"full", "bbox", "no"}
        Pixel splitting (CSR engine, cython).
    radial_range : tuple of float, optional
        (Qmin, Qmax) in Å⁻¹; default the whole detector.
    sigma_clip : float, optional
        If given, reject outliers beyond this many σ per ring with pyFAI's
        ``sigma_clip_ng`` (Poisson error model) instead of plain averaging.
    dark : ndarray of shape (H, W), optional
        Dark image subtracted by pyFAI before every integration.

    Notes
    -----
    pyFAI caches its sparse integration matrix on the AzimuthalIntegrator keyed by
    shape, npt, unit, range, mask and method; keeping one instance and one mask makes
    every frame after the first a sparse matrix-vector product.

    :meth:`integrate_many` goes one step further for series: after one
    ``integrate1d`` call it takes pyFAI's own CSR matrix (the pixel-splitting weights
    of the chosen method) and pyFAI's solid-angle and polarization arrays, and applies
    them to a block of frames at once, I_k = (M·(x_k ⊙ g)) / (M·(c ⊙ g)) with g the
    unmasked-pixel indicator and c the pyFAI correction; this is pyFAI's own
    ``integrate1d`` normalisation (weights, bins and corrections unchanged), checked
    against it on the first frame (relative difference < 1e-3, else the plain pyFAI
    call is used for every frame).
    """

    def __init__(self, ai, shape, npt=2000, mask=None, polarization=0.99, method="full",
                 radial_range=None, sigma_clip=None, dark=None):
        if method not in METHODS:
            raise ValueError(f"method {method!r}: allowed {sorted(METHODS)}")
        if not (isinstance(npt, (int, np.integer)) and 10 <= npt <= 100000):
            raise ValueError(f"npt = {npt!r}: must be an integer in 10-100000")
        if polarization is not None and not -1 <= polarization <= 1:
            raise ValueError(f"polarization = {polarization}: allowed range -1 to 1")
        shape = tuple(int(s) for s in shape)
        det_shape = ai.detector.shape or ai.detector.max_shape  # shape includes binning
        if det_shape is not None and tuple(det_shape) != shape:
            raise ValueError(
                f"image shape {shape[0]}x{shape[1]} does not match the detector in the poni file "
                f"({det_shape[0]}x{det_shape[1]}); use the .poni calibrated for this detector/binning"
            )
        self.ai = ai
        self.shape = shape
        self.npt = int(npt)
        self.mask = combine_masks(shape, mask, names=("mask",))
        self.polarization = polarization
        self.method = METHODS[method]
        self.radial_range = radial_range
        self.sigma_clip = sigma_clip
        if dark is not None:
            dark = np.asarray(dark, dtype=np.float32)
            if dark.shape != shape:
                raise ValueError(
                    f"dark: shape {dark.shape[0]}x{dark.shape[1]} does not match the image shape "
                    f"{shape[0]}x{shape[1]}"
                )
        self.dark = dark
        self._fast = None       # (masked CSR matrix, denominator, bin centres) once validated

    def q_limits(self) -> tuple[float, float]:
        """Q range (Å⁻¹) covered by unmasked pixels."""
        q = self.ai.qArray(self.shape) / 10.0  # nm⁻¹ -> Å⁻¹
        good = q[~self.mask]
        return float(good.min()), float(good.max())

    def integrate(self, image: np.ndarray) -> Integration:
        """Integrate one frame (H, W) to I(Q); Q in Å⁻¹.

        Raises
        ------
        ValueError
            Frame shape differs from the integrator's.
        """
        img = np.asarray(image)
        if img.shape != self.shape:
            raise ValueError(
                f"image: shape {img.shape} does not match {self.shape} (mask/poni/first frame)"
            )
        kwargs = {
            "unit": "q_A^-1",
            "mask": self.mask,
            "polarization_factor": self.polarization,
            "radial_range": self.radial_range,
            "dark": self.dark,
            "correctSolidAngle": True,
        }
        if self.sigma_clip:
            res = self.ai.sigma_clip_ng(
                img, self.npt, method=("no", "csr", "cython"), thres=float(self.sigma_clip),
                error_model="poisson", **kwargs,
            )
        else:
            res = self.ai.integrate1d(img, self.npt, method=self.method, **kwargs)
        sigma = getattr(res, "sigma", None)
        weight = getattr(res, "sum_normalization", None)
        return Integration(
            q=np.asarray(res.radial, float),
            intensity=np.asarray(res.intensity, float),
            sigma=None if sigma is None else np.asarray(sigma, float),
            weight=None if weight is None else np.asarray(weight, float),
        )

    def _build_fast_path(self, image: np.ndarray, reference: Integration):
        """Fetch pyFAI's CSR matrix for this integration and validate it on ``image``.

        Masked pixels are folded into the matrix (their columns zeroed), so each frame
        then costs one sparse matrix-vector product.
        """
        if self.sigma_clip:
            return None
        import scipy.sparse as sp

        engine = None
        for key, value in self.ai.engines.items():
            eng = getattr(value, "engine", None)
            if (eng is not None and getattr(key, "dim", 1) == 1 and hasattr(eng, "indptr")
                    and getattr(eng, "output_size", None) == self.npt
                    and getattr(key, "split", None) == self.method[0]):
                engine = eng
        if engine is None:
            return None
        good = (~self.mask).ravel().astype(np.float32)
        indices = np.asarray(engine.indices)
        matrix = sp.csr_matrix(
            (np.asarray(engine.data, dtype=np.float32) * good[indices], indices,
             np.asarray(engine.indptr)),
            shape=(engine.output_size, engine.input_size),
        )
        corr = np.asarray(self.ai.solidAngleArray(self.shape, absolute=False), np.float32).ravel()
        if self.polarization is not None:
            corr = corr * np.asarray(self.ai.polarization(self.shape, self.polarization),
                                     np.float32).ravel()
        denominator = matrix @ corr
        fast = (matrix, denominator, reference.q)
        trial = self._apply(fast, image)
        ref = reference.intensity
        ok = np.isfinite(ref) & (denominator > 0) & (np.abs(ref) > 0)
        if not ok.any() or np.max(np.abs(trial[ok] - ref[ok]) / np.abs(ref[ok])) > 1e-3:
            return None
        return fast

    def _apply(self, fast, frame: np.ndarray) -> np.ndarray:
        matrix, denominator, _ = fast
        x = np.asarray(frame)
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            x = np.where(np.isfinite(x), x, 0)       # NaN/inf pixels (masked ones weigh 0)
        # float32 like pyFAI's input; the sparse sum then carries ~1e-6 relative rounding
        x = x.astype(np.float32, copy=False).ravel()
        if self.dark is not None:
            x = x - self.dark.ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (matrix @ x) / denominator
        out[denominator <= 0] = 0.0                  # empty bins, as pyFAI reports them
        return out

    def integrate_many(self, frames) -> tuple[np.ndarray, np.ndarray]:
        """Integrate a series of frames with the cached pyFAI CSR matrix.

        Parameters
        ----------
        frames : iterable of ndarray of shape (H, W)
            Frames of this detector (a 3-D array or any iterable, consumed lazily).

        Returns
        -------
        q : ndarray of shape (npt,)
            Bin centres, Å⁻¹ (those of :meth:`integrate`).
        intensity : ndarray of shape (K, npt)
            One row per frame; equal (to float32 rounding) to :meth:`integrate`.
        """
        rows: list[np.ndarray] = []
        q = None
        for frame in frames:
            frame = np.asarray(frame)
            if frame.shape != self.shape:
                raise ValueError(
                    f"image: frame shape {frame.shape} does not match {self.shape} (mask/poni/first frame)"
                )
            if self._fast is None:
                first = self.integrate(frame)
                self._fast = self._build_fast_path(frame, first) or False
                q = first.q
                rows.append(first.intensity.astype(float))
            elif self._fast:
                rows.append(self._apply(self._fast, frame))
            else:
                res = self.integrate(frame)
                q = res.q
                rows.append(res.intensity.astype(float))
        if q is None and self._fast:
            q = self._fast[2]
        return q, np.asarray(rows, dtype=float).reshape(len(rows), -1)

    @property
    def fast_path(self) -> bool:
        """Whether :meth:`integrate_many` uses the cached CSR matrix (validated)."""
        return bool(self._fast)
