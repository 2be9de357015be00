"""muser_imaging in live mode: raw frame files (whole 100 000-byte frames each) arrive in a
watched folder (live input ``frames``); every complete 5-s batch (8 codes, or a frame of a
later batch arrived) is imaged on the warm path (calibration solved once, PSFs cached) and
published; at the stop, pending batches are imaged and the figures written.

The dataset input still gives the array, the calibrator loop, the ephemeris and the weather.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hisci import InputError

from . import frames as F
from .dataset import Batch, DatasetError, open_dataset, parse_utc, read_frames, resolve_folder
from .outputs import write_batch
from .pipeline import PsfCache, process_batch, solve_calibration

#: Pixels per side of the Stokes I thumbnail sent to the page.
THUMB = 64


class BatchAssembler:
    """Frames -> 5-s batches, closed when all 8 codes are in or a later batch starts."""

    def __init__(self, t_ref, cadence_s: float) -> None:
        self.t_ref, self.cadence_s = t_ref, cadence_s
        self.pending: dict[int, Batch] = {}
        self.last_time = None

    def add(self, frames: list[F.Frame]) -> list[Batch]:
        for f in frames:
            if self.t_ref is None:
                self.t_ref = f.time
            k = round((f.time - self.t_ref).total_seconds() / self.cadence_s)
            batch = self.pending.setdefault(k, Batch(k))
            if self.last_time is not None and f.time <= self.last_time:
                batch.problems.append(f"frame {f.counter}: time does not increase; dropped")
                continue
            self.last_time = f.time
            batch.frames[f.code] = f
        newest = max(self.pending) if self.pending else None
        done = [k for k in sorted(self.pending) if len(self.pending[k].frames) == F.N_CODES or k < newest]
        return [self.pending.pop(k) for k in done]

    def flush(self) -> list[Batch]:
        out = [self.pending.pop(k) for k in sorted(self.pending)]
        return out


def _thumb(image: np.ndarray) -> list:
    step = max(1, image.shape[-1] // THUMB)
    return np.round(np.nan_to_num(image[::step, ::step]), 4).tolist()


def run_live(ctx) -> dict:
    """Image every 5-s batch of the frame files arriving in the watched folder."""
    with tempfile.TemporaryDirectory(prefix="muser_") as scratch:
        return _run_live(ctx, Path(scratch))


def _run_live(ctx, scratch: Path) -> dict:
    from . import plugin as batch_mode  # request parsing, batch outputs and figures

    extra = ctx.params["extra"]
    nthreads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    config = batch_mode.read_config(ctx, nthreads)
    outputs = {extra["output"]} if isinstance(extra["output"], str) else set(extra["output"])
    try:
        ds = open_dataset(resolve_folder(ctx.input("dataset"), scratch))
    except DatasetError as exc:
        raise InputError(str(exc), file=exc.file or "", pointer="/data/dataset", hint=exc.hint or "") from None
    cal_report = read_frames(ds.files["calibrator"])
    calib = solve_calibration(cal_report.frames, ds.calibrator_flux)
    ctx.save_json("calibration.json", {**calib.summary(), "dropped_frames": cal_report.dropped})
    assembler = BatchAssembler(parse_utc(ds.observation["start_utc"]) if "start_utc" in ds.observation else None,
                               ds.cadence_s)
    cache = PsfCache(60.0)
    results, dyn, dropped = [], [], []
    last_image = None

    def image(batch: Batch, arrived: float) -> None:
        nonlocal last_image
        t0 = time.perf_counter()
        result = process_batch(ds, batch, calib, config, cache, xp=ctx.xp)
        seconds = time.perf_counter() - t0
        result.summary["latency_s"] = round(time.time() - arrived, 4)
        result.summary["seconds"] = round(seconds, 4)
        write_batch(ctx.output_dir, result, outputs)
        results.append(result.summary)
        published = {"batch": batch.index, "state": result.summary["state"], "time_utc": result.summary["time_utc"],
                     "seconds": round(seconds, 4)}
        if result.dirty is not None:
            peaks = result.peak_spectrum()
            stokes = result.stokes_i()
            dyn.append((result.summary, peaks))
            last_image = (result.summary, stokes)
            published.update(peak_jy=[None if not np.isfinite(p) else round(float(p), 4) for p in peaks],
                             freq_hz=list(result.summary["freq_hz"]), thumbnail=_thumb(stokes[len(stokes) // 2]))
        ctx.publish("batch", published)

    for item in ctx.live_items("frames"):
        size = item.path.stat().st_size
        if size % F.FRAME_SIZE:
            ctx.logger.warning("frame file %s: %d bytes is not a whole number of %d-byte frames; the tail is "
                               "ignored", item.path.name, size, F.FRAME_SIZE)
        report = read_frames(item.path)
        dropped.extend({**d, "file": item.path.name} for d in report.dropped)
        for batch in assembler.add(report.frames):
            image(batch, item.arrived)
    for batch in assembler.flush():
        image(batch, time.time())
    if dyn or last_image is not None:
        batch_mode._figures(ctx, dyn, last_image, calib, int(extra.get("figure_channel", 40)))
    return {
        "batches": [{"batch": r["batch"], "state": r["state"], "time_utc": r["time_utc"], "seconds": r["seconds"],
                     "latency_s": r["latency_s"]} for r in results],
        "seconds_per_batch_warm": round(float(np.median([r["seconds"] for r in results[1:]])), 4)
        if len(results) > 1 else None,
        "image_size": config.npix(), "dropped_frames": dropped,
        "calibration": {"missing_codes": calib.missing_codes},
    }
