"""One 5-s batch from frames to images: validate, flag, calibrate, image, CLEAN, restore.

The steps follow ``shared/research/muser.md`` section 4. Everything here takes plain
objects (a :class:`~.dataset.Dataset`, a :class:`~.dataset.Batch`, an
:class:`ImagingConfig`) and returns arrays and a JSON-ready summary; plugin.py only
reads the parameters, calls :func:`process_batch` and writes files.
"""

from __future__ import annotations

import time as _time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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
    """Image one batch.

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
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t0, c0 = _time.perf_counter(), _time.process_time()
    cache = cache or PsfCache(config.psf_cache_s)
    npix = config.npix()
    cells = config.cells()
    chans = [int(c) for c in config.channels]
    freqs = config.freqs
    pols = list(config.polarizations)
    summary: dict = {
        "batch": batch.index,
        "time_utc": batch.time.isoformat() if batch.frames else None,
        "polarizations": pols,
        "channels": chans,
        "freq_hz": freqs.tolist(),
        "cell_arcsec": cells.tolist(),
        "image_size": npix,
        "flags": {"problems": list(batch.problems), "missing_codes": batch.missing_codes},
    }
    if not batch.frames:
        summary["state"] = "missing: no valid frame in the batch"
        return BatchResult(batch.index, summary["state"], summary)
    reason = weather_flag(ds, batch.time)
    if reason:
        summary["state"] = reason
        summary["flags"]["weather"] = reason
        return BatchResult(batch.index, reason, summary)

    # --- validate: dead antennas per band (both polarisations flagged together)
    bands = sorted({c // 16 for c in chans})
    band_dead: dict[int, np.ndarray] = {}
    for b in bands:
        fr = [batch.frames[c] for c in (2 * b, 2 * b + 1) if c in batch.frames]
        if fr:
            dead = dead_antennas(fr)
            if calib is not None and config.calibrate:
                for c in (2 * b, 2 * b + 1):
                    if c in batch.frames:
                        dead |= calib.flagged[c]
            band_dead[b] = dead
    summary["flags"]["dead_antennas"] = {str(b): np.flatnonzero(d).tolist()
                                         for b, d in band_dead.items()}
    timings["validate"] = _time.perf_counter() - t0
    cpu["validate"] = _time.process_time() - c0

    # --- calibrate and compute uvw per band
    t1, c1 = _time.perf_counter(), _time.process_time()
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
        per_band[b] = (uvw, vis, valid, tb, ha, dec)
    timings["calibrate"] = _time.perf_counter() - t1
    cpu["calibrate"] = _time.process_time() - c1

    # --- PSFs per channel (cached), weights
    t2, c2 = _time.perf_counter(), _time.process_time()
    rdt = np.float32 if config.single else np.float64
    psf_list, beams, weights, psf_of_chan = [], [], {}, {}
    jobs = []
    psf_w = config.w_correction if config.psf_w_correction is None else config.psf_w_correction
    for ci, ch in enumerate(chans):
        b = ch // 16
        if b not in per_band:
            continue
        uvw, _, valid, tb, _, _ = per_band[b]
        cell_rad = cell_radians(cells[ci])
        wgt = imaging.visibility_weights(uvw, freqs[ci], valid, config.weighting, npix, cell_rad)
        weights[ci] = wgt
        key = (ch, npix, round(float(cells[ci]), 9), config.weighting, psf_w,
               valid.tobytes())
        hit = cache.get(key, tb.timestamp())
        if hit is None:
            jobs.append((ci, key, tb.timestamp(), uvw, freqs[ci], wgt, cell_rad))
        psf_of_chan[ci] = (key, hit)

    psf_imgs = _image_many([(j[3], j[4], np.ones(len(j[3]), np.complex128), j[5], j[6])
                            for j in jobs], 2 * npix, config, xp, psf_w,
                           epsilon=config.psf_epsilon)
    for (ci, key, t, *_), p in zip(jobs, psf_imgs):
        p = np.ascontiguousarray(p, dtype=rdt)
        beam = clean.fit_beam(p)
        cache.put(key, t, (p, beam))
        psf_of_chan[ci] = (key, (p, beam))
    chan_psf_index = {}
    for ci, (_key, (p, beam)) in sorted(psf_of_chan.items()):
        chan_psf_index[ci] = len(psf_list)
        psf_list.append(p)
        beams.append(beam)
    timings["psf"] = _time.perf_counter() - t2
    cpu["psf"] = _time.process_time() - c2

    # --- dirty images
    t3, c3 = _time.perf_counter(), _time.process_time()
    dirty = np.empty((len(pols), len(chans), npix, npix), rdt)  # every image written below
    missing = []
    img_jobs = []
    for pi, pol in enumerate(pols):
        for ci, ch in enumerate(chans):
            b, k = ch // 16, ch % 16
            if b not in per_band:
                missing.append({"polarization": pol, "channel": ch, "reason": "no frame"})
                continue
            uvw, vis, valid, *_ = per_band[b]
            v = {"L": vis[0, k], "R": vis[1, k], "I": 0.5 * (vis[0, k] + vis[1, k])}[pol]
            if np.isnan(v).any():
                missing.append({"polarization": pol, "channel": ch,
                                "reason": "frame missing or dropped for this polarisation"})
                continue
            img_jobs.append((pi, ci, uvw, freqs[ci], v, weights[ci], cell_radians(cells[ci])))

    imgs = _image_many([j[2:] for j in img_jobs], npix, config, xp, config.w_correction)
    imaged = np.zeros(dirty.shape[:2], bool)
    for (pi, ci, *_), img in zip(img_jobs, imgs):
        dirty[pi, ci] = img
        imaged[pi, ci] = True
    dirty[~imaged] = np.nan
    timings["dirty"] = _time.perf_counter() - t3
    cpu["dirty"] = _time.process_time() - c3
    if progress:
        progress(0.5, f"batch {batch.index}: {len(img_jobs)} dirty images")

    # --- CLEAN and restore
    restored = models = None
    iterations = None
    if config.clean != "none" and psf_list and img_jobs:
        t4, c4 = _time.perf_counter(), _time.process_time()
        models, residuals, iterations = _deconvolve(dirty, img_jobs, psf_list, chan_psf_index,
                                                    config, npix, timings, xp)
        timings["clean"] = _time.perf_counter() - t4 - timings.get("major_cycles", 0.0)
        cpu["clean+major"] = _time.process_time() - c4
        t5, c5 = _time.perf_counter(), _time.process_time()
        index = np.array([chan_psf_index.get(ci, 0) for _ in pols for ci in range(len(chans))])
        flat_res = residuals.reshape(-1, npix, npix)  # restored in place (not kept)
        restored = clean.restore_images(models.reshape(-1, npix, npix), flat_res, beams,
                                        index, out=flat_res).reshape(dirty.shape)
        timings["restore"] = _time.perf_counter() - t5
        cpu["restore"] = _time.process_time() - c5

    # --- summary
    beam_arcsec = []
    for ci in range(len(chans)):
        if ci in chan_psf_index:
            bmaj, bmin, bpa = beams[chan_psf_index[ci]]
            beam_arcsec.append({"bmaj_arcsec": bmaj * cells[ci], "bmin_arcsec": bmin * cells[ci],
                                "bpa_deg": bpa})
        else:
            beam_arcsec.append(None)
    final = restored if restored is not None else dirty
    summary["beam"] = beam_arcsec
    summary["peaks"] = _peaks(final, pols, chans, cells)
    summary["missing_images"] = missing
    summary["flags"]["dropped_codes"] = batch.missing_codes
    summary["psf_cache"] = {"hits": cache.hits, "misses": cache.misses}
    if iterations is not None:
        summary["clean_iterations"] = iterations.tolist()
    summary["ephemeris"] = {str(b): {"utc": v[3].isoformat(), "sun_ha_deg": v[4],
                                     "sun_dec_deg": v[5], "sun_ra_deg": ds.ephemeris.ra_at(v[3])}
                            for b, v in per_band.items()}
    timings["total"] = _time.perf_counter() - t0
    cpu["total"] = _time.process_time() - c0
    summary["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
    summary["cpu_s"] = {k: round(v, 4) for k, v in cpu.items()}
    state = "imaged" if not missing else ("partial" if img_jobs else "missing: no image")
    summary["state"] = state
    return BatchResult(
        batch.index, state, summary, dirty=dirty, restored=restored, models=models,
        psfs={"psf": psf_list, "beams": beams, "index": chan_psf_index},
        calibrated={b: v[:3] for b, v in per_band.items()},
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
