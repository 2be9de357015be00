"""One 5-s batch from frames to images: validate, flag, calibrate, image, CLEAN, restore.

The steps follow ``shared/research/muser.md`` section 4. Everything here takes plain
objects (a :class:`~.dataset.Dataset`, a :class:`~.dataset.Batch`, an
:class:`ImagingConfig`) and returns arrays and a JSON-ready summary; plugin.py only
reads the parameters, calls :func:`process_batch` and writes files.
"""

from __future__ import annotations

import time as _time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import calibration, clean, imaging
from . import frames as F
from .dataset import Batch, Dataset, dead_antennas, weather_flag
from .geometry import auto_cell_arcsec, auto_image_size, baseline_vectors, uvw_m
from .imaging import cell_radians

POLARIZATIONS = ("L", "R", "I")


@dataclass
class ImagingConfig:
    """Imaging parameters (the plugin's ``extra`` parameters, parsed).

    ``channels`` are global channel indices 0..63 (band-major); ``image_size`` and
    ``cell_arcsec`` are an int / float or ``"auto"``.
    """

    polarizations: tuple[str, ...] = ("L", "R")
    channels: tuple[int, ...] = tuple(range(64))
    image_size: int | str = 512
    cell_arcsec: float | str = "auto"
    w_correction: bool = True
    weighting: str = "natural"
    clean: str = "clark"
    clean_gain: float = 0.1
    clean_niter: int = 300
    clean_threshold: float = 0.0
    calibrate: bool = True
    epsilon: float = 1e-4
    # ducc0 accuracy of the PSFs (None: same as epsilon); 1e-3 of the peak is far below
    # what CLEAN resolves and makes the 64 PSFs of a cold batch about 25 % cheaper
    psf_epsilon: float | None = 1e-3
    single: bool = True
    nthreads: int = 2
    psf_cache_s: float = 60.0
    patch_half: int = 24
    psf_w_correction: bool | None = None  # None: same as w_correction
    major_cycles: int = 2
    gridder: str = "auto"  # "ducc0" (CPU), "dft" (direct sum through xp), "auto"

    def __post_init__(self):
        bad = [p for p in self.polarizations if p not in POLARIZATIONS]
        if bad or not self.polarizations:
            raise ValueError(f"polarizations must be a non-empty list of {POLARIZATIONS}, got "
                             f"{list(self.polarizations)}")
        badc = [c for c in self.channels if not 0 <= int(c) < 64]
        if badc or not self.channels:
            raise ValueError(f"channels must be in 0..63, got {badc or 'none'}")
        if self.clean not in clean.METHODS:
            raise ValueError(f"clean must be one of {clean.METHODS}, got {self.clean!r}")

    @property
    def freqs(self) -> np.ndarray:
        return F.all_frequencies()[list(self.channels)]

    def cells(self) -> np.ndarray:
        """Cell per selected channel, arcsec."""
        if self.cell_arcsec == "auto":
            return auto_cell_arcsec(self.freqs)
        return np.full(len(self.channels), float(self.cell_arcsec))

    def npix(self) -> int:
        if self.image_size == "auto":
            return auto_image_size(self.cells())
        n = int(self.image_size)
        if n % 2:
            raise ValueError(f"image_size must be even, got {n}")
        return n


@dataclass
class Calibration:
    """Gains per (code, channel, antenna) and the antennas flagged on the calibrator."""

    gains: np.ndarray  # (8, 16, 40) complex; 0 = unknown/flagged
    flagged: np.ndarray  # (8, 40) bool
    missing_codes: list[int]
    flux: float
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "calibrator_flux": self.flux,
            "missing_codes": self.missing_codes,
            "flagged_antennas": {str(c): np.flatnonzero(self.flagged[c]).tolist()
                                 for c in range(F.N_CODES)},
            "problems": self.problems,
        }


def solve_calibration(frames: list[F.Frame], flux: float, method: str = "stefcal") -> Calibration:
    """Solve gains from the calibrator loop (one frame per code)."""
    gains = np.zeros((F.N_CODES, F.N_CHANNELS, F.N_ANTENNAS), np.complex128)
    flagged = np.ones((F.N_CODES, F.N_ANTENNAS), bool)
    by_code = {f.code: f for f in frames}
    problems = [f"calibrator frame {f.counter} has target code {f.target:#06x}, expected "
                "0x0101 (satellite)" for f in frames if f.target != F.TARGET_CODES["satellite"]]
    for code, f in by_code.items():
        dead = dead_antennas([f])
        flagged[code] = dead
        gains[code] = calibration.solve_gains(f.vis, flux, flagged=dead, method=method)
    missing = [c for c in range(F.N_CODES) if c not in by_code]
    return Calibration(gains, flagged, missing, flux, problems)


class PsfCache:
    """PSFs and fitted beams per channel, shared by both polarisations and by batches
    within ``max_age_s`` of each other (the PSF changes slowly with time)."""

    def __init__(self, max_age_s: float = 60.0):
        self.max_age_s = max_age_s
        self._store: dict = {}
        self.hits = 0
        self.misses = 0

    def get(self, key, t: float):
        item = self._store.get(key)
        if item is not None and abs(t - item[0]) <= self.max_age_s:
            self.hits += 1
            return item[1]
        self.misses += 1
        return None

    def put(self, key, t: float, value):
        self._store[key] = (t, value)


@dataclass
class BatchResult:
    """Images and summary of one batch."""

    index: int
    state: str
    summary: dict
    dirty: np.ndarray | None = None  # (P, C, N, N) float32
    restored: np.ndarray | None = None
    models: np.ndarray | None = None
    psfs: dict | None = None
    calibrated: dict | None = None  # band -> (uvw (780, 3), vis (2, 16, 780), valid (780,))

    def stokes_i(self) -> np.ndarray:
        """Stokes I cube (C, N, N) of the final images (restored, else dirty)."""
        pols = self.summary["polarizations"]
        img = self.restored if self.restored is not None else self.dirty
        if "I" in pols:
            return img[pols.index("I")]
        if "L" in pols and "R" in pols:
            return 0.5 * (img[pols.index("L")] + img[pols.index("R")])
        return img[0]

    def peak_spectrum(self) -> np.ndarray:
        """Peak of the Stokes I image per channel (NaN where none)."""
        with np.errstate(all="ignore"):
            return np.array([np.nanmax(c) if not np.isnan(c).all() else np.nan for c in self.stokes_i()])


def _image_many(items, npix, config, xp, w_correction, epsilon=None):
    """Dirty images for ``items`` = [(uvw_m, freq, vis, weights, cell_rad)], a list of
    float arrays of shape (npix, npix): ducc0 in threads on the CPU, or one direct
    Fourier sum through ``xp`` (cupy on a GPU worker, or ``gridder = "dft"``)."""
    if not items:
        return []
    if _use_dft(config, xp):
        uvw = np.stack([it[0] * (it[1] / imaging.C_LIGHT) for it in items])
        vis = np.stack([it[2] for it in items])
        wgt = np.stack([it[3] for it in items])
        cells = np.array([it[4] for it in items])
        chunk = max(256, int(2e8 // (len(items) * uvw.shape[1])))
        imgs = _to_host(imaging.dirty_images_xp(uvw, vis, wgt, npix, cells,
                                                w_correction=w_correction, xp=xp, chunk=chunk))
        return list(imgs)

    def one(it):
        uvw, f, v, wgt, cell_rad = it
        return imaging.dirty_image(uvw, f, v, wgt, npix, cell_rad, w_correction=w_correction,
                                   epsilon=config.epsilon if epsilon is None else epsilon,
                                   nthreads=1, single=config.single)

    return _pmap(one, items, config.nthreads)


def _use_dft(config, xp) -> bool:
    if config.gridder not in ("auto", "ducc0", "dft"):
        raise ValueError(f"gridder must be auto, ducc0 or dft, got {config.gridder!r}")
    return config.gridder == "dft" or (config.gridder == "auto" and xp is not np)


def _pmap(fn, jobs, nthreads):
    if nthreads <= 1 or len(jobs) <= 1:
        return [fn(j) for j in jobs]
    with ThreadPoolExecutor(nthreads) as pool:
        return list(pool.map(fn, jobs))


class Stopwatch:
    """Wall and CPU seconds per named section of a batch (the summary's timings_s/cpu_s)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._start = (_time.perf_counter(), _time.process_time())

    @contextmanager
    def section(self, name: str, cpu_name: str | None = None):
        t, c = _time.perf_counter(), _time.process_time()
        try:
            yield
        finally:
            self.wall[name] = _time.perf_counter() - t + self.wall.get(name, 0.0)
            self.cpu[cpu_name or name] = _time.process_time() - c

    def total(self) -> None:
        self.wall["total"] = _time.perf_counter() - self._start[0]
        self.cpu["total"] = _time.process_time() - self._start[1]


@dataclass
class Band:
    """One band's calibrated data: uvw (780, 3) m, vis (2, 16, 780), valid (780,), time and Sun."""

    uvw: np.ndarray
    vis: np.ndarray
    valid: np.ndarray
    time: Any
    ha: float
    dec: float


@dataclass
class Psfs:
    """PSFs and fitted beams per imaged channel, and the imaging weights."""

    images: list = field(default_factory=list)
    beams: list = field(default_factory=list)
    index: dict = field(default_factory=dict)  # channel position -> index into images
    weights: dict = field(default_factory=dict)  # channel position -> (780,) weights


def batch_header(batch: Batch, config: ImagingConfig) -> dict:
    """The summary fields known before any work: time, selection, grid, flags so far."""
    return {
        "batch": batch.index,
        "time_utc": batch.time.isoformat() if batch.frames else None,
        "polarizations": list(config.polarizations),
        "channels": [int(c) for c in config.channels],
        "freq_hz": config.freqs.tolist(),
        "cell_arcsec": config.cells().tolist(),
        "image_size": config.npix(),
        "flags": {"problems": list(batch.problems), "missing_codes": batch.missing_codes},
    }


def flag_antennas(batch: Batch, calib: Calibration | None, config: ImagingConfig) -> dict[int, np.ndarray]:
    """Validate: dead antennas per band (both polarisations flagged together), bands with frames."""
    band_dead: dict[int, np.ndarray] = {}
    for b in sorted({int(c) // 16 for c in config.channels}):
        codes = [c for c in (2 * b, 2 * b + 1) if c in batch.frames]
        if not codes:
            continue
        dead = dead_antennas([batch.frames[c] for c in codes])
        if calib is not None and config.calibrate:
            for c in codes:
                dead |= calib.flagged[c]
        band_dead[b] = dead
    return band_dead


def calibrate_bands(ds: Dataset, batch: Batch, calib: Calibration | None, config: ImagingConfig,
                    band_dead: dict[int, np.ndarray]) -> dict[int, Band]:
    """Apply the gains and compute uvw per band (at the band's first frame time)."""
    bl = baseline_vectors(ds.antennas_enu, F.ANT1, F.ANT2)
    per_band = {}
    for b, dead in band_dead.items():
        present = [c for c in (2 * b, 2 * b + 1) if c in batch.frames]
        tb = min(batch.frames[c].time for c in present)
        ha, dec = ds.ephemeris(tb)
        uvw = uvw_m(bl, ds.lat_deg, ha, dec)
        valid = ~(dead[F.ANT1] | dead[F.ANT2])
        vis = np.full((2, F.N_CHANNELS, F.N_BASELINES), np.nan + 0j)
        for c in present:
            v = batch.frames[c].vis
            if calib is not None and config.calibrate:
                if c in calib.missing_codes:
                    continue
                v, ok = calibration.apply_gains(v, calib.gains[c])
                valid = valid & ok.all(axis=0)
            vis[c & 1] = v
        per_band[b] = Band(uvw, vis, valid, tb, ha, dec)
    return per_band


def psfs_and_weights(per_band: dict[int, Band], config: ImagingConfig, cache: PsfCache, xp=np) -> Psfs:
    """Imaging weights and the PSF (twice the image size) and beam of each channel, cached."""
    npix, cells, freqs = config.npix(), config.cells(), config.freqs
    rdt = np.float32 if config.single else np.float64
    out = Psfs()
    psf_of_chan, jobs = {}, []
    psf_w = config.w_correction if config.psf_w_correction is None else config.psf_w_correction
    for ci, ch in enumerate(int(c) for c in config.channels):
        band = per_band.get(ch // 16)
        if band is None:
            continue
        cell_rad = cell_radians(cells[ci])
        wgt = imaging.visibility_weights(band.uvw, freqs[ci], band.valid, config.weighting, npix, cell_rad)
        out.weights[ci] = wgt
        key = (ch, npix, round(float(cells[ci]), 9), config.weighting, psf_w, band.valid.tobytes())
        hit = cache.get(key, band.time.timestamp())
        if hit is None:
            jobs.append((ci, key, band.time.timestamp(), band.uvw, freqs[ci], wgt, cell_rad))
        psf_of_chan[ci] = (key, hit)
    psf_imgs = _image_many([(j[3], j[4], np.ones(len(j[3]), np.complex128), j[5], j[6])
                            for j in jobs], 2 * npix, config, xp, psf_w, epsilon=config.psf_epsilon)
    for (ci, key, t, *_), p in zip(jobs, psf_imgs):
        p = np.ascontiguousarray(p, dtype=rdt)
        beam = clean.fit_beam(p)
        cache.put(key, t, (p, beam))
        psf_of_chan[ci] = (key, (p, beam))
    for ci, (_key, (p, beam)) in sorted(psf_of_chan.items()):
        out.index[ci] = len(out.images)
        out.images.append(p)
        out.beams.append(beam)
    return out


def dirty_images(per_band: dict[int, Band], config: ImagingConfig, weights: dict, xp=np):
    """Dirty image per (polarisation, channel).

    Returns
    -------
    dirty : ndarray (P, C, N, N), NaN where no image could be made
    jobs : list of (pol index, channel index, uvw, freq, vis, weights, cell_rad), one per image
    missing : list of {"polarization", "channel", "reason"}
    """
    npix, cells, freqs = config.npix(), config.cells(), config.freqs
    pols, chans = list(config.polarizations), [int(c) for c in config.channels]
    dirty = np.empty((len(pols), len(chans), npix, npix), np.float32 if config.single else np.float64)
    missing, jobs = [], []
    for pi, pol in enumerate(pols):
        for ci, ch in enumerate(chans):
            b, k = ch // 16, ch % 16
            if b not in per_band:
                missing.append({"polarization": pol, "channel": ch, "reason": "no frame"})
                continue
            band = per_band[b]
            v = {"L": band.vis[0, k], "R": band.vis[1, k], "I": 0.5 * (band.vis[0, k] + band.vis[1, k])}[pol]
            if np.isnan(v).any():
                missing.append({"polarization": pol, "channel": ch,
                                "reason": "frame missing or dropped for this polarisation"})
                continue
            jobs.append((pi, ci, band.uvw, freqs[ci], v, weights[ci], cell_radians(cells[ci])))
    imgs = _image_many([j[2:] for j in jobs], npix, config, xp, config.w_correction)
    imaged = np.zeros(dirty.shape[:2], bool)
    for (pi, ci, *_), img in zip(jobs, imgs):
        dirty[pi, ci] = img
        imaged[pi, ci] = True
    dirty[~imaged] = np.nan
    return dirty, jobs, missing


def clean_and_restore(dirty: np.ndarray, jobs: list, psfs: Psfs, config: ImagingConfig,
                      watch: Stopwatch, xp=np):
    """CLEAN (with major cycles) and restore with the fitted beams: (models, restored, iterations)."""
    npix = dirty.shape[-1]
    with watch.section("clean", "clean+major"):
        models, residuals, iterations = _deconvolve(dirty, jobs, psfs.images, psfs.index,
                                                    config, npix, watch.wall, xp)
    watch.wall["clean"] -= watch.wall.get("major_cycles", 0.0)
    with watch.section("restore"):
        nchan = dirty.shape[1]
        index = np.array([psfs.index.get(ci, 0) for _ in range(dirty.shape[0]) for ci in range(nchan)])
        flat_res = residuals.reshape(-1, npix, npix)  # restored in place (not kept)
        restored = clean.restore_images(models.reshape(-1, npix, npix), flat_res, psfs.beams,
                                        index, out=flat_res).reshape(dirty.shape)
    return models, restored, iterations


def beams_arcsec(psfs: Psfs, cells: np.ndarray) -> list[dict | None]:
    """The fitted beam of each channel in arcsec (None where the channel has no PSF)."""
    out: list[dict | None] = []
    for ci in range(len(cells)):
        if ci in psfs.index:
            bmaj, bmin, bpa = psfs.beams[psfs.index[ci]]
            out.append({"bmaj_arcsec": bmaj * cells[ci], "bmin_arcsec": bmin * cells[ci], "bpa_deg": bpa})
        else:
            out.append(None)
    return out


def process_batch(
    ds: Dataset,
    batch: Batch,
    calib: Calibration | None,
    config: ImagingConfig,
    cache: PsfCache | None = None,
    *,
    progress=None,
    xp=np,
) -> BatchResult:
    """Image one batch: flag, calibrate, PSFs, dirty images, CLEAN and restore, summary.

    Parameters
    ----------
    ds : Dataset
    batch : Batch
    calib : Calibration or None
        None (or ``config.calibrate`` False) images the raw, uncalibrated counts.
    config : ImagingConfig
    cache : PsfCache, optional
    progress : callable(fraction, message), optional
    xp : module
        numpy, or cupy on a GPU worker: CLEAN then runs as a batched Hogbom on the GPU
        (:func:`clean.hogbom_batched`); gridding stays with ducc0 on the CPU.

    Returns
    -------
    BatchResult
        ``state`` is "imaged", "partial" (some images missing) or "flagged: ...".
    """
    watch = Stopwatch()
    cache = cache or PsfCache(config.psf_cache_s)
    summary = batch_header(batch, config)
    if not batch.frames:
        summary["state"] = "missing: no valid frame in the batch"
        return BatchResult(batch.index, summary["state"], summary)
    reason = weather_flag(ds, batch.time)
    if reason:
        summary["state"] = reason
        summary["flags"]["weather"] = reason
        return BatchResult(batch.index, reason, summary)

    with watch.section("validate"):
        band_dead = flag_antennas(batch, calib, config)
    summary["flags"]["dead_antennas"] = {str(b): np.flatnonzero(d).tolist() for b, d in band_dead.items()}
    with watch.section("calibrate"):
        per_band = calibrate_bands(ds, batch, calib, config, band_dead)
    with watch.section("psf"):
        psfs = psfs_and_weights(per_band, config, cache, xp)
    with watch.section("dirty"):
        dirty, jobs, missing = dirty_images(per_band, config, psfs.weights, xp)
    if progress:
        progress(0.5, f"batch {batch.index}: {len(jobs)} dirty images")
    restored = models = iterations = None
    if config.clean != "none" and psfs.images and jobs:
        models, restored, iterations = clean_and_restore(dirty, jobs, psfs, config, watch, xp)

    cells = config.cells()
    summary["beam"] = beams_arcsec(psfs, cells)
    summary["peaks"] = _peaks(restored if restored is not None else dirty, summary["polarizations"],
                              summary["channels"], cells)
    summary["missing_images"] = missing
    summary["flags"]["dropped_codes"] = batch.missing_codes
    summary["psf_cache"] = {"hits": cache.hits, "misses": cache.misses}
    if iterations is not None:
        summary["clean_iterations"] = iterations.tolist()
    summary["ephemeris"] = {str(b): {"utc": v.time.isoformat(), "sun_ha_deg": v.ha, "sun_dec_deg": v.dec,
                                     "sun_ra_deg": ds.ephemeris.ra_at(v.time)}
                            for b, v in per_band.items()}
    watch.total()
    summary["timings_s"] = {k: round(v, 4) for k, v in watch.wall.items()}
    summary["cpu_s"] = {k: round(v, 4) for k, v in watch.cpu.items()}
    state = "imaged" if not missing else ("partial" if jobs else "missing: no image")
    summary["state"] = state
    return BatchResult(
        batch.index, state, summary, dirty=dirty, restored=restored, models=models,
        psfs={"psf": psfs.images, "beams": psfs.beams, "index": psfs.index},
        calibrated={b: (v.uvw, v.vis, v.valid) for b, v in per_band.items()},
    )


def _deconvolve(dirty, img_jobs, psf_list, chan_psf_index, config, npix, timings, xp=np):
    """Image-plane CLEAN, then ``config.major_cycles`` exact major cycles.

    Each major cycle predicts the model visibilities (ducc0 dirty2vis, w-term included)
    and re-images the residual visibilities (Cotton-Schwab), so the residual is exact
    although the shifted PSF ignores the position dependence of the w-term.
    """
    npol, nchan = dirty.shape[:2]
    flat = dirty.reshape(-1, npix, npix)
    index = np.array([chan_psf_index.get(ci, 0) for _ in range(npol) for ci in range(nchan)])
    cycles = max(int(config.major_cycles), 0)
    rounds = max(cycles, 1)
    per_round = -(-int(config.clean_niter) // rounds)
    residual = flat
    model = None
    iterations = np.zeros(len(flat), np.int64)
    t_major = 0.0
    for _ in range(rounds):
        if xp is np:  # the PSF list goes to the kernel as is (no stacked copy)
            m, r, it = clean.clean_images(residual, psf_list, index, method=config.clean,
                                          gain=config.clean_gain, niter=per_round,
                                          threshold=config.clean_threshold,
                                          patch_half=config.patch_half)
        else:  # GPU worker: batched Hogbom through xp, results back on the host
            m, r, it = (_to_host(a) for a in clean.hogbom_batched(
                residual, np.stack(psf_list), index, xp=xp, gain=config.clean_gain,
                niter=per_round, threshold=config.clean_threshold))
        # (NaN only in the images without data, which stay NaN in every round)
        if model is None:
            model = m
        else:
            model += m
        iterations += it
        if cycles == 0:
            residual = r
            break
        t = _time.perf_counter()
        if residual is flat:  # images with a job are re-imaged below, the others stay NaN
            residual = flat.copy()

        items = []
        for pi, ci, uvw, f, v, wgt, cell_rad in img_jobs:
            pred = imaging.predict_sparse(model[pi * nchan + ci], uvw, f, cell_rad,
                                          w_correction=config.w_correction)
            items.append((uvw, f, v - pred, wgt, cell_rad))
        for (pi, ci, *_), img in zip(img_jobs, _image_many(items, npix, config, xp,
                                                            config.w_correction)):
            residual[pi * nchan + ci] = img
        t_major += _time.perf_counter() - t
        if np.all(clean.peak_abs(residual) <= config.clean_threshold):
            break
    timings["major_cycles"] = t_major
    if xp is not np:
        model[np.isnan(flat).any(axis=(1, 2))] = np.nan
    return (model.reshape(dirty.shape), residual.reshape(dirty.shape),
            iterations.reshape(npol, nchan))


def _to_host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def _peaks(images, pols, chans, cells):
    out = []
    n = images.shape[-1]
    for pi, pol in enumerate(pols):
        for ci, ch in enumerate(chans):
            img = images[pi, ci]
            if np.isnan(img).all():
                continue
            iy, ix = np.unravel_index(np.nanargmax(img), img.shape)
            out.append({"polarization": pol, "channel": ch, "peak": float(img[iy, ix]),
                        "ix": int(ix), "iy": int(iy),
                        "l_arcsec": float(-(ix - n // 2) * cells[ci]),
                        "m_arcsec": float((iy - n // 2) * cells[ci])})
    return out
