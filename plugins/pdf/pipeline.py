"""The pdf pipeline as steps a batch run or a live stream can share.

::

    frames = setup_integrator(ai, first_frame, npt=2000, mask=mask)    # once per detector
    row = frames.process_frame(frame)                                    # per frame: I(Q) row
    q, stack = common_grid(patterns)                                     # or frames.q, rows
    corrected = correct(stack, background=bg, bgscale=None)              # despike, background
    result = transform(q, corrected.stack, config)                       # S(Q), F(Q), G(r)
    peaks = write_outputs(out, labels, q, result, config, header)        # PDFgetX3 files

Every step raises ``ValueError`` with a message that names what is wrong; the plugin's
``run`` says which parameter or input that was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .background import auto_bgscale, remove_spikes, resample, subtract_background
from .fileio import write_pdfgetx3
from .integration import Integrator1D, auto_mask
from .transform import PDFConfig, PDFResult, PDFTransformer, find_gr_peaks

VERSION = "0.1.0"
log = logging.getLogger("hisci.pdf")

PatternList = Sequence[tuple[str, np.ndarray, np.ndarray]]


@dataclass
class FrameIntegrator:
    """An integrator built once for a detector, then applied to each frame.

    Attributes
    ----------
    integrator : the pyFAI-backed integrator (its CSR fast path builds on first use).
    lo, hi : slice of the integrator's bins kept (those with enough unmasked pixels).
    empty : bool mask over the kept bins with no pixels at all (NaN in every row).
    mask : the full pixel mask used (user mask | automatic mask).
    grid : centres (Å⁻¹) of all the integrator's bins.
    """

    integrator: Integrator1D
    lo: int
    hi: int
    empty: np.ndarray
    mask: np.ndarray
    grid: np.ndarray

    @property
    def q(self) -> np.ndarray:
        """Bin centres (Å⁻¹) of the kept bins."""
        return self.grid[self.lo:self.hi]

    def process_frame(self, frame: np.ndarray) -> np.ndarray:
        """One frame (H, W) -> its I(Q) row on :attr:`q` (NaN in empty bins)."""
        return self.process_frames([frame])[0]

    def process_frames(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """Frames -> rows of shape (K, len(q)); the cached CSR product after the first."""
        _, rows = self.integrator.integrate_many(frames)
        rows = rows[:, self.lo:self.hi]
        rows[:, self.empty] = np.nan
        return rows

    def background(self, image: np.ndarray) -> np.ndarray:
        """A background image integrated like a frame (pyFAI's full integration)."""
        res = self.integrator.integrate(image)
        return np.where(self.empty, np.nan, res.intensity[self.lo:self.hi])

    def info(self) -> dict[str, Any]:
        """Geometry and mask facts for the run summary."""
        ai = self.integrator.ai
        geometry = ai.getFit2D()
        return {
            "wavelength_A": ai.wavelength * 1e10,
            "beam_center_px": [round(geometry["centerX"], 3), round(geometry["centerY"], 3)],
            "distance_mm": round(geometry["directDist"], 3),
            "masked_pixels": int(self.mask.sum()),
            "integration_fast_path": self.integrator.fast_path,
        }


def setup_integrator(ai: Any, first_frame: np.ndarray, *, npt: int, polarization: float,
                     method: str = "full", mask: np.ndarray | None = None,
                     dark: np.ndarray | None = None, automask: bool = True,
                     beamstop_threshold: float = 0.0, sigmaclip: float = 0.0,
                     logger: logging.Logger = log) -> FrameIntegrator:
    """Build the integrator once, from the geometry and the first frame.

    Parameters
    ----------
    ai : pyFAI AzimuthalIntegrator (from :func:`integration.load_geometry`).
    first_frame : ndarray of shape (H, W); fixes the detector shape, feeds the automatic
        mask and the choice of bins kept.
    npt, polarization, method, sigmaclip : integration settings (see :class:`Integrator1D`).
    mask, dark : user mask (True = masked) and dark image, shape (H, W), optional.
    automask : add dead and hot pixels to the mask.
    beamstop_threshold : mask pixels below this value (0: off).

    Raises
    ------
    ValueError
        Settings the integrator refuses (e.g. an unknown method).
    """
    shape = first_frame.shape
    full_mask = np.zeros(shape, bool) if mask is None else mask.copy()
    if automask or beamstop_threshold > 0:
        ref = first_frame.astype(np.float32) - (dark if dark is not None else 0)
        added = auto_mask(ref, dead=automask, hot=automask,
                          beamstop_threshold=beamstop_threshold if beamstop_threshold > 0 else None)
        logger.info("automatic mask: %d pixels added to %d user-masked",
                    int((added & ~full_mask).sum()), int(full_mask.sum()))
        full_mask |= added
    integ = Integrator1D(ai, shape, npt=int(npt), mask=full_mask, polarization=float(polarization),
                         method=method, sigma_clip=sigmaclip if sigmaclip > 0 else None, dark=dark)
    first = integ.integrate(first_frame)
    trimmed = first.trimmed()
    lo = int(np.searchsorted(first.q, trimmed.q[0]))
    return FrameIntegrator(integ, lo, lo + trimmed.q.size, trimmed.weight <= 0, full_mask, first.q)


def process_frame(setup: FrameIntegrator, frame: np.ndarray) -> np.ndarray:
    """One frame -> one I(Q) row (see :meth:`FrameIntegrator.process_frame`)."""
    return setup.process_frame(frame)


def common_grid(patterns: PatternList) -> tuple[np.ndarray, np.ndarray]:
    """One Q grid for all patterns (the first one's); others are resampled onto it.

    Returns
    -------
    q : ndarray of shape (N,)
    stack : ndarray of shape (K, N)
    """
    q = patterns[0][1]
    rows = [inten if (qq.size == q.size and np.allclose(qq, q)) else resample(qq, inten, q)
            for _, qq, inten in patterns]
    return q, np.vstack(rows)


@dataclass
class Corrected:
    """Patterns after despiking and background subtraction."""

    stack: np.ndarray
    bgscale: float
    spikes_removed: int


def correct(stack: np.ndarray, q: np.ndarray, background: tuple[np.ndarray, np.ndarray] | None = None,
            bgscale: float | None = None, despike: bool = True,
            logger: logging.Logger = log) -> Corrected:
    """Remove single-bin spikes and subtract ``bgscale`` times the background.

    Parameters
    ----------
    stack : ndarray of shape (K, N), patterns on ``q`` (not modified).
    background : (q_bg, I_bg), resampled onto ``q``; None for no background.
    bgscale : background scale; None picks the largest scale keeping the first pattern
        non-negative (:func:`background.auto_bgscale`).
    """
    stack = np.array(stack, dtype=float)
    n_spikes = 0
    if despike:
        for k in range(stack.shape[0]):
            stack[k], n = remove_spikes(stack[k])
            n_spikes += n
        if n_spikes:
            logger.info("removed %d single-bin spikes", n_spikes)
    if background is None:
        return Corrected(stack, 0.0 if bgscale is None else float(bgscale), n_spikes)
    bg_curve = resample(background[0], background[1], q)
    if despike:
        bg_curve, _ = remove_spikes(bg_curve)
    if bgscale is None:
        bgscale = auto_bgscale(stack[0], bg_curve)
        logger.info("auto bgscale = %.4f (largest scale keeping I - s*I_bg >= 0)", bgscale)
    return Corrected(subtract_background(stack, np.nan_to_num(bg_curve), bgscale), float(bgscale), n_spikes)


def transform(q: np.ndarray, stack: np.ndarray, config: PDFConfig, xp: Any = np) -> tuple[PDFResult, float]:
    """S(Q), F(Q) and G(r) of every row; returns the result and the seconds it took.

    Raises
    ------
    ValueError
        A Q or r setting outside what the data allow; the message starts with its name.
    """
    transformer = PDFTransformer(q, config, xp=xp)
    t0 = time.perf_counter()
    result = transformer.transform(stack)
    return result, time.perf_counter() - t0


def setting_named(message: str) -> str:
    """Which PDFConfig setting a :func:`transform` error is about ("" if none)."""
    for name in ("qmaxinst", "qmax", "qmin", "rpoly", "rstep", "rmin", "rmax"):
        if message.startswith(name) or f" {name} " in message[:20]:
            return name
    return ""


def peak_rmin(config: PDFConfig) -> float:
    """Peaks below this r are polynomial ripples, not shells."""
    return max(1.0, config.rpoly * 0.5)


def write_outputs(out: Path, labels: Sequence[str], q: np.ndarray, result: PDFResult,
                  config: PDFConfig, header: dict[str, Any],
                  integrated: np.ndarray | None = None) -> list[float | None]:
    """PDFgetX3 files ``<label>.iq/.sq/.fq/.gr`` (and ``.chi`` of ``integrated``) per row.

    Returns
    -------
    The first G(r) peak (Å) of each row, None where there is none.
    """
    gr = np.atleast_2d(result.gr)
    curves = {"iq": np.atleast_2d(result.iq), "sq": np.atleast_2d(result.sq),
              "fq": np.atleast_2d(result.fq), "gr": gr}
    scales = np.atleast_1d(result.scale)
    used: set[str] = set()
    first_peaks: list[float | None] = []
    for k, label in enumerate(labels):
        stem = label if label not in used else f"{label}_{k}"
        used.add(stem)
        for kind, data in curves.items():
            x = result.r if kind == "gr" else result.q
            write_pdfgetx3(out / f"{stem}.{kind}", x, data[k], kind,
                           {**header, "adhocscale": float(scales[min(k, scales.size - 1)])},
                           version=f"hisci-pdf {VERSION}")
        if integrated is not None:
            np.savetxt(out / f"{stem}.chi", np.column_stack([q, integrated[k]]), fmt="%.6e",
                       header=f"pyFAI integrate1d of {stem} (before background subtraction)\nq_A^-1 I")
        pk = find_gr_peaks(result.r, gr[k], rmin=peak_rmin(config))
        first_peaks.append(float(pk[0]) if pk.size else None)
    return first_peaks


def file_header(config: PDFConfig, bgscale: float, degree: int, inputs: str, background: str) -> dict[str, Any]:
    """The PDFgetX3 header of every output file."""
    return {
        "dataformat": "QA", "inputfile": inputs, "backgroundfile": background, "mode": "xray",
        "composition": config.composition, "bgscale": float(bgscale), "rpoly": config.rpoly,
        "qmaxinst": config.qmaxinst, "qmin": config.qmin, "qmax": config.qmax,
        "rmin": config.rmin, "rmax": config.rmax, "rstep": config.rstep, "lorch": config.lorch,
        "polydegree": degree,
    }
