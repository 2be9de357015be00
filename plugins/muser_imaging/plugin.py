"""MUSER-I imaging: raw frames to calibrated, CLEANed solar images (glue only)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from . import figures, fitsio
from . import frames as F
from .dataset import (
    Batch,
    DatasetError,
    group_batches,
    open_dataset,
    parse_utc,
    read_frames,
    resolve_folder,
)
from .live import run_live  # noqa: F401 - live mode (runtime.live)
from .pipeline import ImagingConfig, PsfCache, process_batch, solve_calibration
from .stream import follow_batches


def _input_error(message, **kw):
    try:
        from hisci.errors import InputError
    except ImportError:  # pragma: no cover - the core is always there in the product
        return ValueError(message)
    return InputError(message, **kw)


def parse_index_list(text, upper: int, name: str) -> list[int]:
    """'all', '3', '0-15,32' or a list -> sorted indices in [0, upper)."""
    if isinstance(text, (list, tuple)):
        items = [str(t) for t in text]
    else:
        text = str(text).strip().lower()
        if text in ("", "all"):
            return list(range(upper))
        items = [t for t in text.replace(" ", "").split(",") if t]
    out = set()
    for item in items:
        try:
            if "-" in item[1:]:
                lo, hi = item.split("-", 1)
                out.update(range(int(lo), int(hi) + 1))
            else:
                out.add(int(item))
        except ValueError:
            raise _input_error(f"{name}: cannot read {item!r}; use 'all' or indices like 0-15,32",
                               pointer=f"/extra/{name}", given=text) from None
    bad = sorted(i for i in out if not 0 <= i < upper)
    if bad:
        raise _input_error(f"{name}: {bad} out of range 0..{upper - 1}", pointer=f"/extra/{name}",
                           given=text, allowed=f"0..{upper - 1}")
    return sorted(out)


def config_from_params(extra: dict, nthreads: int) -> ImagingConfig:
    """ImagingConfig from the plugin's ``extra`` parameters."""
    cell = str(extra.get("cell_arcsec", "auto")).strip().lower()
    if cell != "auto":
        try:
            cell = float(cell)
        except ValueError:
            raise _input_error(f"cell_arcsec must be 'auto' or a number of arcsec, got {cell!r}",
                               pointer="/extra/cell_arcsec", given=cell) from None
        if cell <= 0:
            raise _input_error("cell_arcsec must be positive", pointer="/extra/cell_arcsec",
                               given=cell)
    size = extra.get("image_size", 512)
    size = "auto" if str(size).lower() == "auto" else int(size)
    pols = extra.get("polarizations", ["L", "R"])
    pols = [pols] if isinstance(pols, str) else list(pols)
    try:
        threshold = float(extra.get("clean_threshold", 0) or 0)
    except ValueError:
        raise _input_error("clean_threshold must be a number (flux)",
                           pointer="/extra/clean_threshold",
                           given=extra.get("clean_threshold")) from None
    try:
        return ImagingConfig(
            polarizations=tuple(pols),
            channels=tuple(parse_index_list(extra.get("channels", "all"), 64, "channels")),
            image_size=size,
            cell_arcsec=cell,
            w_correction=bool(extra.get("w_correction", True)),
            weighting=str(extra.get("weighting", "natural")),
            clean=str(extra.get("clean", "clark")),
            clean_gain=float(extra.get("clean_gain", 0.1)),
            clean_niter=int(extra.get("clean_niter", 300)),
            clean_threshold=threshold,
            major_cycles=int(extra.get("clean_major_cycles", 2)),
            nthreads=nthreads,
        )
    except ValueError as exc:
        raise _input_error(str(exc)) from None


def run(ctx):
    """Image every selected batch of the dataset (see README.md)."""
    with tempfile.TemporaryDirectory(prefix="muser_") as scratch:
        return _run(ctx, Path(scratch))


def _run(ctx, scratch: Path):
    extra = ctx.params["extra"]
    import os

    nthreads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    config = config_from_params(extra, nthreads)
    outputs = extra.get("output", ["npy"])
    outputs = {outputs} if isinstance(outputs, str) else set(outputs)
    try:
        folder = resolve_folder(ctx.input("dataset"), scratch)
        ds = open_dataset(folder)
    except DatasetError as exc:
        raise _input_error(str(exc), file=exc.file or "", pointer="/data/dataset",
                           hint=exc.hint or "") from None
    ctx.logger.info("dataset %s: %s", folder, json.dumps(ds.observation.get("files", {})))

    ctx.progress(0.02, "calibrating from calibrator.bin")
    cal_report = read_frames(ds.files["calibrator"])
    calib = solve_calibration(cal_report.frames, ds.calibrator_flux)
    (ctx.output_dir / "calibration.json").write_text(json.dumps(
        {**calib.summary(), "dropped_frames": cal_report.dropped}, indent=1))
    np.save(ctx.output_dir / "gains.npy", calib.gains)
    if calib.missing_codes:
        ctx.logger.warning("calibrator loop lacks codes %s", calib.missing_codes)

    t_ref = parse_utc(ds.observation["start_utc"]) if "start_utc" in ds.observation else None
    wanted = extra.get("batches", "all")
    cache = PsfCache(60.0)
    results, dyn = [], []
    last_image = None
    dropped: list[dict] = []

    if extra.get("stream", False):
        source = follow_batches(ds.files["target"], t_ref, ds.cadence_s,
                                idle_timeout_s=float(extra.get("stream_timeout_s", 10)),
                                dropped=dropped, should_stop=ctx.cancelled)
    else:
        report = read_frames(ds.files["target"])
        dropped.extend(report.dropped)
        if not report.frames:
            raise _input_error("target.bin holds no valid frame", file="target.bin",
                               pointer="/data/dataset")
        t0 = t_ref or report.frames[0].time
        source = [(b, None) for b in group_batches(report.frames, t0, ds.cadence_s)]
    selected = None if str(wanted).strip().lower() in ("", "all") else set(
        parse_index_list(wanted, 10**9, "batches"))

    n_total = len(source) if isinstance(source, list) else None
    for n_done, (batch, arrived) in enumerate(source):
        if selected is not None and batch.index not in selected:
            continue
        fraction = n_done / n_total if n_total else 0.5
        ctx.progress(0.05 + 0.9 * fraction, f"batch {batch.index}")
        result = process_batch(ds, batch, calib, config, cache, xp=ctx.xp)
        if arrived is not None:
            result.summary["latency_s"] = round(time.monotonic() - arrived, 4)
        result.summary["flags"]["dropped_frames"] = [
            d for d in dropped if _batch_of_offset(d, batch)]
        _write_batch(ctx, ds, result, config, outputs)
        results.append(result.summary)
        if result.dirty is not None:
            dyn.append((result.summary, _peak_spectrum(result)))
            last_image = (result.summary, _stokes_i(result))

    if not results:
        raise _input_error(f"no batch selected (batches={wanted!r})", pointer="/extra/batches")
    ctx.progress(0.96, "figures")
    _figures(ctx, dyn, last_image, calib, int(extra.get("figure_channel", 40)))
    ctx.progress(1.0, "done")
    return {
        "batches": [{"batch": r["batch"], "state": r["state"], "time_utc": r["time_utc"],
                     "timings_s": r.get("timings_s"), "latency_s": r.get("latency_s")}
                    for r in results],
        "n_images": int(sum(len(r["polarizations"]) * len(r["channels"]) - len(
            r.get("missing_images", [])) for r in results if r["state"] in ("imaged", "partial"))),
        "image_size": config.npix(),
        "dropped_frames": dropped,
        "calibration": {"missing_codes": calib.missing_codes},
    }


def _batch_of_offset(drop: dict, batch: Batch) -> bool:
    return drop.get("index", -1) // F.N_CODES == batch.index


def _write_batch(ctx, ds, result, config, outputs):
    d = ctx.output_dir / f"batch_{result.index}"
    d.mkdir(exist_ok=True)
    s = result.summary
    if result.dirty is not None and ("npy" in outputs or not outputs):
        np.save(d / "dirty.npy", result.dirty.astype(np.float32))
        if result.restored is not None:
            np.save(d / "clean.npy", result.restored.astype(np.float32))
            nz = np.nonzero(np.nan_to_num(result.models))
            np.savez_compressed(d / "components.npz", index=np.stack(nz).astype(np.int32),
                                flux=result.models[nz].astype(np.float32),
                                shape=np.array(result.models.shape))
    if result.dirty is not None and "fits" in outputs:
        _write_fits(d, ds, result, config)
    if result.calibrated and "uvfits" in outputs:
        _write_uvfits(d, ds, result)
    (d / "images.json").write_text(json.dumps(s, indent=1, default=_json_default))


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def _write_fits(d: Path, ds, result, config):
    s = result.summary
    eph = next(iter(s["ephemeris"].values()))
    for kind, cube in (("dirty", result.dirty), ("clean", result.restored)):
        if cube is None:
            continue
        for pi, pol in enumerate(s["polarizations"]):
            hdus = []
            for ci, ch in enumerate(s["channels"]):
                if np.isnan(cube[pi, ci]).all():
                    continue
                e = s["ephemeris"].get(str(ch // 16), eph)
                beam = s["beam"][ci]
                hdus.append(fitsio.image_hdu(
                    cube[pi, ci], cell_arcsec=s["cell_arcsec"][ci], freq_hz=s["freq_hz"][ci],
                    time=parse_utc(e["utc"]), sun_ra_deg=e["sun_ra_deg"],
                    sun_dec_deg=e["sun_dec_deg"], polarization=pol,
                    beam=(beam["bmaj_arcsec"], beam["bmin_arcsec"], beam["bpa_deg"])
                    if beam and kind == "clean" else None,
                    name=f"CH{ch:02d}"))
            if hdus:
                fitsio.write_image_fits(d / f"{kind}_{pol}.fits", hdus)


def _write_uvfits(d: Path, ds, result):
    vis = np.zeros((F.N_BASELINES, 64, 2), np.complex64)
    wgt = np.zeros((F.N_BASELINES, 64, 2), np.float32)
    uvw0 = None
    for b, (uvw, v, valid) in sorted(result.calibrated.items()):
        uvw0 = uvw if uvw0 is None else uvw0
        for p in (0, 1):
            ok = ~np.isnan(v[p]).any(axis=1)
            vis[:, 16 * b:16 * b + 16, p] = np.nan_to_num(v[p]).T
            wgt[:, 16 * b:16 * b + 16, p] = (valid[:, None] & ok[None, :])
    s = result.summary
    e = next(iter(s["ephemeris"].values()))
    fitsio.write_uvfits(d / "vis.uvfits", uvw_metres=uvw0, ant1=F.ANT1, ant2=F.ANT2, vis=vis,
                        weights=wgt, freq0_hz=F.all_frequencies()[0], dfreq_hz=25e6,
                        time=parse_utc(e["utc"]), sun_ra_deg=e["sun_ra_deg"],
                        sun_dec_deg=e["sun_dec_deg"])


def _stokes_i(result):
    pols = result.summary["polarizations"]
    img = result.restored if result.restored is not None else result.dirty
    if "I" in pols:
        return img[pols.index("I")]
    if "L" in pols and "R" in pols:
        return 0.5 * (img[pols.index("L")] + img[pols.index("R")])
    return img[0]


def _peak_spectrum(result):
    i = _stokes_i(result)
    with np.errstate(all="ignore"):
        return np.array([np.nanmax(c) if not np.isnan(c).all() else np.nan for c in i])


def _figures(ctx, dyn, last_image, calib, figure_channel):
    if last_image is not None:
        s, img = last_image
        chans = s["channels"]
        ci = min(range(len(chans)), key=lambda k: abs(chans[k] - figure_channel))
        ctx.save_figure(figures.solar_image(img[ci], s["cell_arcsec"][ci], s["freq_hz"][ci],
                                            title=f"batch {s['batch']}, Stokes I, "
                                                  f"channel {chans[ci]}"), "stokes_i")
        ctx.save_figure(figures.dynamic_spectrum(
            [x[0]["time_utc"] for x in dyn], np.array(s["freq_hz"]),
            np.stack([x[1] for x in dyn], axis=1)), "dynamic_spectrum")
    ctx.save_figure(figures.gain_figure(calib.gains), "gains")
