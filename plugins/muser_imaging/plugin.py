"""MUSER-I imaging: raw frames to calibrated, CLEANed solar images.

``run`` reads the request and loops over the batches; the steps live in
:mod:`.pipeline`, the files in :mod:`.outputs` and :mod:`.fitsio`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hisci import InputError, RunContext

from . import figures
from . import frames as F
from .dataset import Batch, DatasetError, group_batches, open_dataset, parse_utc, read_frames, resolve_folder
from .live import run_live  # noqa: F401 - live mode (runtime.live)
from .outputs import write_batch
from .parallel import merge, plan, run_chunk  # noqa: F401 - runtime.parallel: chunks of 5-s batches
from .pipeline import ImagingConfig, PsfCache, process_batch, solve_calibration
from .stream import follow_batches


def parse_index_list(text: object, upper: int) -> list[int]:
    """'all', '3', '0-15,32' or a list -> sorted indices in [0, upper).

    Raises
    ------
    ValueError
        An item that is not an index or a range, or an index out of range.
    """
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
            raise ValueError(f"cannot read {item!r}; use 'all' or indices like 0-15,32") from None
    bad = sorted(i for i in out if not 0 <= i < upper)
    if bad:
        raise ValueError(f"{bad} out of range 0..{upper - 1}")
    return sorted(out)


def cell_size(text: object) -> float | str:
    """'auto' or a positive number of arcsec."""
    cell = str(text).strip().lower()
    if cell == "auto":
        return cell
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"give 'auto' or a number of arcsec, got {cell!r}") from None
    if not value > 0:
        raise ValueError(f"must be positive, got {value}")
    return value


def read_config(ctx: RunContext, nthreads: int) -> ImagingConfig:
    """ImagingConfig from the request's ``extra`` parameters."""
    extra = ctx.params["extra"]
    with ctx.field("cell_arcsec") as text:
        cell = cell_size(text)
    with ctx.field("image_size") as size:
        size = "auto" if str(size).lower() == "auto" else int(size)
    with ctx.field("clean_threshold") as threshold:
        threshold = float(threshold or 0)
    with ctx.field("channels") as channels:
        channels = tuple(parse_index_list(channels, 64))
    pols = extra["polarizations"]
    with ctx.field("/extra"):
        config = ImagingConfig(
            polarizations=tuple([pols] if isinstance(pols, str) else pols), channels=channels,
            image_size=size, cell_arcsec=cell, w_correction=bool(extra["w_correction"]),
            weighting=str(extra["weighting"]), clean=str(extra["clean"]),
            clean_gain=float(extra["clean_gain"]), clean_niter=extra["clean_niter"],
            clean_threshold=threshold, major_cycles=extra["clean_major_cycles"], nthreads=nthreads,
        )
    with ctx.field("image_size"):
        config.npix()
    return config


def run(ctx: RunContext) -> dict:
    """Image every selected batch of the dataset (see README.md)."""
    with tempfile.TemporaryDirectory(prefix="muser_") as scratch:
        return _run(ctx, Path(scratch))


def _run(ctx: RunContext, scratch: Path) -> dict:
    extra = ctx.params["extra"]
    nthreads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    config = read_config(ctx, nthreads)
    formats = {extra["output"]} if isinstance(extra["output"], str) else set(extra["output"])
    try:
        folder = resolve_folder(ctx.input("dataset"), scratch)
        ds = open_dataset(folder)
    except DatasetError as exc:
        raise InputError(str(exc), file=exc.file or "", pointer="/data/dataset", hint=exc.hint or "") from None
    ctx.logger.info("dataset %s: %s", folder, json.dumps(ds.observation.get("files", {})))

    ctx.progress(0.02, "calibrating from calibrator.bin")
    cal_report = read_frames(ds.files["calibrator"])
    calib = solve_calibration(cal_report.frames, ds.calibrator_flux)
    ctx.save_json("calibration.json", {**calib.summary(), "dropped_frames": cal_report.dropped})
    ctx.save_array("gains.npy", calib.gains, {"axes": ["code", "channel", "antenna"]})
    if calib.missing_codes:
        ctx.logger.warning("calibrator loop lacks codes %s", calib.missing_codes)

    t_ref = parse_utc(ds.observation["start_utc"]) if "start_utc" in ds.observation else None
    dropped: list[dict] = []
    if extra["stream"]:
        source = follow_batches(ds.files["target"], t_ref, ds.cadence_s,
                                idle_timeout_s=float(extra["stream_timeout_s"]),
                                dropped=dropped, should_stop=ctx.cancelled)
    else:
        report = read_frames(ds.files["target"])
        dropped.extend(report.dropped)
        if not report.frames:
            raise InputError("target.bin holds no valid frame", file="target.bin", pointer="/data/dataset")
        source = [(b, None) for b in group_batches(report.frames, t_ref or report.frames[0].time, ds.cadence_s)]
    wanted = extra["batches"]
    with ctx.field("batches"):
        selected = None if str(wanted).strip().lower() in ("", "all") else set(parse_index_list(wanted, 10**9))

    cache = PsfCache(60.0)
    results, dyn, last_image = [], [], None
    n_total = len(source) if isinstance(source, list) else None
    with ctx.progress_span(0.05, 0.95):
        for n_done, (batch, arrived) in enumerate(source):
            if selected is not None and batch.index not in selected:
                continue
            ctx.progress(n_done / n_total if n_total else 0.5, f"batch {batch.index}")
            result = process_batch(ds, batch, calib, config, cache, xp=ctx.xp)
            if arrived is not None:
                result.summary["latency_s"] = round(time.monotonic() - arrived, 4)
            result.summary["flags"]["dropped_frames"] = [d for d in dropped if _batch_of_offset(d, batch)]
            write_batch(ctx.output_dir, result, formats)
            results.append(result.summary)
            if result.dirty is not None:
                dyn.append((result.summary, result.peak_spectrum()))
                last_image = (result.summary, result.stokes_i())

    if not results:
        raise InputError(f"no batch selected (batches={wanted!r})", pointer="/extra/batches")
    ctx.progress(0.96, "figures")
    _figures(ctx, dyn, last_image, calib, extra["figure_channel"])
    ctx.progress(1.0, "done")
    return run_summary(results, config.npix(), dropped, calib)


def run_summary(results: list[dict], image_size: int, dropped: Any, calib: Any) -> dict:
    """The job's summary (result.json) from the batches' own summaries."""
    return {
        "batches": [{"batch": r["batch"], "state": r["state"], "time_utc": r["time_utc"],
                     "timings_s": r.get("timings_s"), "latency_s": r.get("latency_s")}
                    for r in results],
        "n_images": int(sum(len(r["polarizations"]) * len(r["channels"]) - len(
            r.get("missing_images", [])) for r in results if r["state"] in ("imaged", "partial"))),
        "image_size": image_size,
        "dropped_frames": dropped,
        "calibration": {"missing_codes": calib.missing_codes},
    }


def _batch_of_offset(drop: dict, batch: Batch) -> bool:
    return drop.get("index", -1) // F.N_CODES == batch.index


def _figures(ctx: RunContext, dyn: list, last_image: tuple | None, calib, figure_channel: int) -> None:
    if last_image is not None:
        s, img = last_image
        chans = s["channels"]
        ci = min(range(len(chans)), key=lambda k: abs(chans[k] - figure_channel))
        ctx.save_figure(figures.solar_image(img[ci], s["cell_arcsec"][ci], s["freq_hz"][ci],
                                            title=f"batch {s['batch']}, Stokes I, channel {chans[ci]}"),
                        "stokes_i")
        ctx.save_figure(figures.dynamic_spectrum(
            [x[0]["time_utc"] for x in dyn], np.array(s["freq_hz"]),
            np.stack([x[1] for x in dyn], axis=1)), "dynamic_spectrum")
    ctx.save_figure(figures.gain_figure(calib.gains), "gains")
