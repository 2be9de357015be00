"""The scan-to-volume pipeline, block by block: normalize, -log, stripes, centre, reconstruct.

:func:`reconstruct_block` reconstructs a block of sinograms with any algorithm;
:func:`reconstruct_scan` runs a whole scan from an open :class:`.scanio.Scan` through a
:class:`.scanio.VolumeWriter`, never holding more than one block of rows. Both are plain
functions of arrays and keyword parameters; ``plugin.py`` only wires them to the RunContext.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from hisci.memory import reuse_freed_memory

from . import centre as centre_mod
from .fbp import fbp_reconstruct
from .filters import check_filter, circular_mask
from .fourier import FourierProjector, gridrec_reconstruct
from .iterative import cgls, sirt
from .preprocess import interpolate_flats, line_integrals, minus_log, normalize, remove_stripes
from .scanio import Scan, VolumeWriter, rows_per_block

__all__ = [
    "ALGORITHMS",
    "BlockBuffers",
    "ReconOptions",
    "ScanResult",
    "available_algorithms",
    "find_centre",
    "reconstruct_block",
    "reconstruct_scan",
    "tomopy_available",
]

#: Every algorithm name; ``tomopy_gridrec`` only works where ``import tomopy`` does.
ALGORITHMS = ("gridrec", "fbp", "sirt", "cgls", "tomopy_gridrec")
DEFAULT_ITERATIONS = {"sirt": 150, "cgls": 12}


def tomopy_available() -> bool:
    """True when TomoPy can be imported (it is not on PyPI; conda-forge has it)."""
    import importlib.util

    return importlib.util.find_spec("tomopy") is not None


def available_algorithms() -> tuple[str, ...]:
    """The algorithms this environment can run."""
    return ALGORITHMS if tomopy_available() else ALGORITHMS[:-1]


def reconstruct_block(
    sinograms: Any,
    theta: np.ndarray,
    center: float,
    algorithm: str = "gridrec",
    filter_name: str = "shepp",
    *,
    n_iter: int | None = None,
    pad_mode: str = "edge",
    xp: ModuleType = np,
    callback: Callable[[int], None] | None = None,
    threads: int | None = None,
    out: np.ndarray | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Reconstruct a block of sinograms.

    Parameters
    ----------
    sinograms : ndarray of shape (n_slices, n_angles, n_det)
        Line integrals (``xp`` array).
    theta : ndarray of shape (n_angles,)
        Angles in radians.
    center : float
        Rotation axis in detector pixels.
    algorithm : str
        One of :data:`ALGORITHMS`.
    filter_name : str
        Filter for the analytic methods (see :data:`.filters.FILTERS`).
    n_iter : int, optional
        Iterations for ``sirt`` / ``cgls`` (default 150 / 12).
    xp : module
        numpy, or cupy on a GPU worker: then ``gridrec`` and ``fbp`` both run the CUDA
        filtered back-projection (ducc0's NUFFT is CPU-only).

    out : ndarray of shape (n_slices, n_det, n_det), float32, optional
        Where ``gridrec`` writes the images (a reused buffer); other methods ignore it.

    Returns
    -------
    images : ndarray of shape (n_slices, n_det, n_det), float32 (``xp`` array)
    info : dict
        ``backend`` and, for iterative methods, ``residuals`` and ``seconds_per_iteration``.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; allowed: {', '.join(ALGORITHMS)}")
    filter_name = check_filter(filter_name)
    info: dict[str, Any] = {}
    if xp is not np and algorithm in ("gridrec", "fbp"):
        info["backend"] = "cupy-fbp"
        return fbp_reconstruct(sinograms, theta, center, filter_name, pad_mode=pad_mode, xp=xp), info
    sino = np.asarray(sinograms if xp is np else xp.asnumpy(sinograms), dtype=np.float32)
    if algorithm == "gridrec":
        info["backend"] = "ducc0-nufft"
        return gridrec_reconstruct(sino, theta, center, filter_name, pad_mode=pad_mode, nthreads=threads,
                                   out=out if sino.ndim == 3 and sino.shape[0] > 1 else None), info
    if algorithm == "fbp":
        info["backend"] = "numba-fbp"
        if threads:
            from hisci.threads import limit_threads

            limit_threads(threads)  # the numba kernel's pool
        return fbp_reconstruct(sino, theta, center, filter_name, pad_mode=pad_mode), info
    if algorithm in ("sirt", "cgls"):
        n_iter = DEFAULT_ITERATIONS[algorithm] if not n_iter else int(n_iter)
        proj = FourierProjector(theta, sino.shape[-1], center, nthreads=threads)
        solver = sirt if algorithm == "sirt" else cgls
        res = solver(proj, sino, n_iter, callback=callback)
        info.update(
            backend="ducc0-fourier-projector",
            iterations=n_iter,
            residuals=[float(r.mean()) for r in res.residuals],
            seconds_per_iteration=res.seconds_per_iteration,
        )
        return res.images, info
    # tomopy_gridrec
    if not tomopy_available():
        raise ValueError(
            "algorithm 'tomopy_gridrec' needs TomoPy, which is not installed here (it is not on "
            "PyPI: install it with conda from conda-forge); choose 'gridrec', hisci's own "
            "gridrec-class method, which is faster and more accurate"
        )
    import tomopy

    tomo_filter = {"ramp": "ramlak", "shepp": "shepp", "cosine": "cosine", "hann": "hann",
                   "hamming": "hamming", "parzen": "parzen", "none": "none"}[filter_name]
    rec = tomopy.recon(
        sino, theta, center=center, sinogram_order=True, algorithm="gridrec",
        filter_name=tomo_filter,
    )
    info["backend"] = f"tomopy {getattr(tomopy, '__version__', '?')}"
    return rec.astype(np.float32), info


@dataclass
class ReconOptions:
    """Pipeline parameters (the plugin's form, as Python values)."""

    rows: tuple[int, int] | None = None  # [start, stop) or None for all
    center: float | str = "auto"
    algorithm: str = "gridrec"
    filter_name: str = "shepp"
    n_iter: int | None = None
    normalize: bool = True
    flat_interpolation: bool = False
    stripe_method: str = "none"
    stripe_size: int = 21
    pad_mode: str = "edge"
    circle_mask: bool = True
    memory_budget_gb: float = 4.0
    threads: int | None = None  # ctx.threads: ducc0 nthreads, numba's pool
    middle_row: int | None = None  # detector row of the sinogram figure and the xy preview
    # (default: the middle of ``rows``; a chunk of rows names its job's middle row)


@dataclass
class ScanResult:
    """What :func:`reconstruct_scan` did."""

    center: float
    center_vo: float | None
    center_pc: float | None
    search: centre_mod.CentreSearch | None
    shape: tuple[int, int, int]
    rows: tuple[int, int]
    rows_per_block: int
    seconds: float
    seconds_per_slice: float
    backend: str
    middle_sinogram: np.ndarray | None  # None when ``middle_row`` is not among ``rows``
    info: dict[str, Any] = field(default_factory=dict)
    #: the volume's central sections, kept as it is written: ``xz`` (rows, n) = image row n // 2
    #: of every slice, ``yz`` (rows, n) = image column n // 2, ``xy`` (n, n) = the slice of
    #: ``middle_row`` when it is among ``rows``
    previews: dict[str, np.ndarray] = field(default_factory=dict)


class BlockBuffers:
    """Arrays reused by every block of a scan: one flat buffer per name, viewed in the
    block's shape (contiguous), so a scan allocates its block-sized arrays once instead of
    once per block (each new one is fresh memory the kernel must zero)."""

    def __init__(self) -> None:
        self._flat: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` (its contents are left over)."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        flat = self._flat.get(name)
        if flat is None or flat.size < size:
            flat = self._flat[name] = np.empty(size, dtype=np.uint8)
        return flat[:size].view(dtype).reshape(shape)


def _sinograms(scan: Scan, r0: int, r1: int, opts: ReconOptions, xp: ModuleType,
               buffers: BlockBuffers | None = None) -> Any:
    raw = None
    if buffers is not None and xp is np:
        raw = buffers.get("raw", (scan.n_proj, r1 - r0, scan.n_cols), scan.data.dtype)
    proj, flats, darks = scan.read_rows(r0, r1, out=raw)
    if opts.normalize and flats is not None and xp is np and not opts.flat_interpolation:
        out = None if buffers is None else buffers.get("sino", (r1 - r0, scan.n_proj, scan.n_cols), np.float32)
        sino = line_integrals(proj, flats, darks, out=out)  # in small steps: no block-sized temporaries
    elif opts.normalize:
        if flats is None:
            raise ValueError(f"{scan.path.name}: {scan.flat_path}: no flat fields to normalize with")
        if opts.flat_interpolation and flats.shape[0] >= 2:
            half = flats.shape[0] // 2
            fl = xp.asarray(flats, dtype=xp.float32)
            flats = interpolate_flats(fl[:half].mean(axis=0), fl[half:].mean(axis=0), proj.shape[0], xp=xp)
        trans = normalize(xp.asarray(proj), xp.asarray(flats) if flats is not None else None,
                          None if darks is None else xp.asarray(darks), xp=xp)
        line = minus_log(trans, xp=xp)
        sino = xp.ascontiguousarray(xp.transpose(line, (1, 0, 2)))  # (rows, angles, cols)
    else:
        sino = xp.ascontiguousarray(xp.transpose(xp.asarray(proj, dtype=xp.float32), (1, 0, 2)))
    if opts.stripe_method != "none":
        host = sino if xp is np else xp.asnumpy(sino)
        kw = {"size": opts.stripe_size} if opts.stripe_method == "sorting" else {}
        sino = xp.asarray(remove_stripes(np.asarray(host), opts.stripe_method, **kw))
    return sino


def find_centre(
    sinogram: np.ndarray, theta: np.ndarray
) -> tuple[float, float | None, centre_mod.CentreSearch]:
    """Vo's centre on the 180-degree part of one sinogram, and the 0/180 cross-check.

    Returns ``(centre_vo, centre_pc or None, search)``; the cross-check is None when the scan
    has no projection within two angular steps of ``theta[0] + 180`` degrees.
    """
    theta = np.asarray(theta, dtype=np.float64)
    rel = theta - theta[0]
    in_half = rel < np.pi - 1e-9
    order = np.argsort(rel[in_half])
    sino_180 = np.asarray(sinogram)[in_half][order]
    search = centre_mod.find_center_vo(sino_180)
    step = np.median(np.diff(np.sort(rel))) if rel.size > 1 else np.pi
    k = int(np.argmin(np.abs(rel - np.pi)))
    pc = None
    if abs(rel[k] - np.pi) <= 2 * step:
        pc = centre_mod.find_center_pc(sinogram[0], sinogram[k])
    elif rel[-1] >= np.pi - 2 * step:
        pc = centre_mod.find_center_pc(sinogram[0], sinogram[int(np.argmax(rel))])
    return search.center, pc, search


def reconstruct_scan(
    scan: Scan,
    writer_factory: Callable[[tuple[int, int, int], float], VolumeWriter],
    opts: ReconOptions,
    *,
    xp: ModuleType = np,
    progress: Callable[[float, str], None] | None = None,
) -> ScanResult:
    """Reconstruct the selected rows of a scan, block by block.

    Parameters
    ----------
    scan : Scan
        Open scan.
    writer_factory : callable
        ``writer_factory(shape, center) -> VolumeWriter``; called once the centre is known.
    opts : ReconOptions
    xp : module
        numpy or cupy.
    progress : callable, optional
        ``progress(fraction, message)``, called once per block (it may raise to cancel).

    Returns
    -------
    ScanResult
    """
    t_start = time.perf_counter()
    n_rows, n_cols = scan.n_rows, scan.n_cols
    r0, r1 = opts.rows if opts.rows is not None else (0, n_rows)
    if not (0 <= r0 < r1 <= n_rows):
        raise ValueError(f"rows {r0}:{r1} outside the detector's 0:{n_rows}")
    mid = (r0 + r1) // 2 if opts.middle_row is None else int(opts.middle_row)
    mid_sino = None
    center_vo = center_pc = None
    search = None
    if isinstance(opts.center, str):
        mid_sino = np.asarray(_sinograms(scan, mid, mid + 1, opts, np)[0])
        center_vo, center_pc, search = find_centre(mid_sino, scan.theta)
        center = float(center_vo)
    else:
        center = float(opts.center)
        if not (0.0 <= center <= n_cols - 1):
            raise ValueError(
                f"center {center} is outside the detector (0 to {n_cols - 1} pixels); "
                "give the rotation axis in detector pixels or 'auto'"
            )
    shape = (r1 - r0, n_cols, n_cols)
    block = rows_per_block(scan, n_cols, opts.memory_budget_gb)
    writer = writer_factory(shape, center)
    mask = circular_mask(n_cols, xp=xp) if opts.circle_mask else None
    buffers = BlockBuffers() if xp is np else None
    previews = {"xz": np.empty((r1 - r0, n_cols), np.float32), "yz": np.empty((r1 - r0, n_cols), np.float32)}
    info: dict[str, Any] = {}
    t_recon = 0.0
    # ducc0 allocates a 64 MB NUFFT grid per pair of rows: the same pages each time
    with reuse_freed_memory():
        try:
            for b0 in range(r0, r1, block):
                b1 = min(r1, b0 + block)
                if progress is not None:
                    progress(0.05 + 0.9 * (b0 - r0) / (r1 - r0), f"rows {b0}:{b1} of {r0}:{r1}")
                sino = _sinograms(scan, b0, b1, opts, xp, buffers)
                if mid_sino is None and b0 <= mid < b1:  # a known centre: the block has the middle row
                    mid_sino = np.array(sino[mid - b0] if xp is np else xp.asnumpy(sino[mid - b0]))
                t0 = time.perf_counter()
                rec, info = reconstruct_block(
                    sino, scan.theta, center, opts.algorithm, opts.filter_name,
                    n_iter=opts.n_iter, pad_mode=opts.pad_mode, xp=xp, threads=opts.threads,
                    out=None if buffers is None else buffers.get("slices", (b1 - b0, n_cols, n_cols), np.float32),
                )
                if rec.ndim == 2:
                    rec = rec[None]
                if mask is not None:  # in place: rec is this block's own array
                    rec *= xp.asarray(mask, dtype=rec.dtype)
                t_recon += time.perf_counter() - t0
                host = np.asarray(rec if xp is np else xp.asnumpy(rec), dtype=np.float32)
                writer.write(b0 - r0, host)
                previews["xz"][b0 - r0:b1 - r0] = host[:, n_cols // 2, :]
                previews["yz"][b0 - r0:b1 - r0] = host[:, :, n_cols // 2]
                if b0 <= mid < b1:
                    previews["xy"] = host[mid - b0].copy()
        finally:
            writer.close()
    seconds = time.perf_counter() - t_start
    return ScanResult(
        center=center, center_vo=center_vo, center_pc=center_pc, search=search, shape=shape,
        rows=(r0, r1), rows_per_block=block, seconds=seconds,
        seconds_per_slice=t_recon / max(r1 - r0, 1), backend=str(info.get("backend", "")),
        middle_sinogram=mid_sino, info=info, previews=previews,
    )
