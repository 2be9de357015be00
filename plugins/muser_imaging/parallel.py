"""muser_imaging in chunks of 5-second batches.

Each chunk solves the calibration from calibrator.bin (cheap, deterministic) and images its
own batches into ``batch_<i>/`` folders. Batches share PSFs through a cache that keeps a
PSF for 60 s; so that a chunk images exactly as a single run would, it first replays the
cache over the batches before it (flags and uvw only) and computes the PSFs that the
single run would still hold at its first batch. ``merge`` moves the batch folders into the
job folder and draws the figures. Stream mode runs whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hisci import InputError
from hisci.parallel import ChunkPart, split_range

from .dataset import DatasetError, group_batches, open_dataset, parse_utc, read_frames, resolve_folder
from .outputs import _plain, write_batch
from .pipeline import (
    ImagingConfig,
    PsfCache,
    calibrate_bands,
    flag_antennas,
    process_batch,
    psfs_and_weights,
    solve_calibration,
    weather_flag,
)

PSF_CACHE_S = 60.0  # as plugin.run


class _Setup:
    """What every chunk (and the plan and the merge) reads: config, dataset, calibration."""

    def __init__(self, ctx: Any, scratch: Path) -> None:
        from .plugin import parse_index_list, read_config

        extra = ctx.params["extra"]
        nthreads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
        self.config: ImagingConfig = read_config(ctx, nthreads)
        try:
            self.ds = open_dataset(resolve_folder(ctx.input("dataset"), scratch))
        except DatasetError as exc:
            raise InputError(str(exc), file=exc.file or "", pointer="/data/dataset", hint=exc.hint or "") from None
        cal_report = read_frames(self.ds.files["calibrator"])
        self.cal_dropped = cal_report.dropped
        self.calib = solve_calibration(cal_report.frames, self.ds.calibrator_flux)
        report = read_frames(self.ds.files["target"])
        self.dropped = list(report.dropped)
        if not report.frames:
            raise InputError("target.bin holds no valid frame", file="target.bin", pointer="/data/dataset")
        t_ref = parse_utc(self.ds.observation["start_utc"]) if "start_utc" in self.ds.observation else None
        batches = group_batches(report.frames, t_ref or report.frames[0].time, self.ds.cadence_s)
        wanted = extra["batches"]
        with ctx.field("batches"):
            selected = None if str(wanted).strip().lower() in ("", "all") else set(parse_index_list(wanted, 10**9))
        self.batches = [b for b in batches if selected is None or b.index in selected]
        if not self.batches:
            raise InputError(f"no batch selected (batches={wanted!r})", pointer="/extra/batches")


def _scratch() -> Any:
    return tempfile.TemporaryDirectory(prefix="muser_")


def plan(ctx: Any) -> list[dict[str, Any]] | None:
    """Ranges of the selected batches (positions in time order); None in stream mode."""
    if ctx.params["extra"]["stream"]:
        return None
    with _scratch() as scratch:
        setup = _Setup(ctx, Path(scratch))
        n = len(setup.batches)
    return [{"batches": [a, b]} for a, b in split_range(0, n, ctx)]


def _psf_keys(per_band: dict, config: ImagingConfig) -> Iterator[tuple[tuple, float]]:
    """The PSF cache keys :func:`.pipeline.psfs_and_weights` looks up for a batch."""
    npix, cells = config.npix(), config.cells()
    psf_w = config.w_correction if config.psf_w_correction is None else config.psf_w_correction
    for ci, ch in enumerate(int(c) for c in config.channels):
        band = per_band.get(ch // 16)
        if band is not None:
            yield ((ch, npix, round(float(cells[ci]), 9), config.weighting, psf_w, band.valid.tobytes()),
                   band.time.timestamp())


def seed_cache(setup: _Setup, before: list, cache: PsfCache) -> None:
    """Fill ``cache`` with the PSFs a single run would hold after imaging ``before``."""
    held: dict[tuple, tuple[float, int]] = {}
    bands: dict[int, dict] = {}
    for j, batch in enumerate(before):
        if not batch.frames or weather_flag(setup.ds, batch.time):
            continue
        per_band = calibrate_bands(setup.ds, batch, setup.calib, setup.config,
                                   flag_antennas(batch, setup.calib, setup.config))
        for key, t in _psf_keys(per_band, setup.config):
            item = held.get(key)
            if item is None or abs(t - item[0]) > cache.max_age_s:
                held[key] = (t, j)
                bands[j] = per_band
    for j in sorted({j for _, j in held.values()}):
        fresh = PsfCache(cache.max_age_s)
        psfs_and_weights(bands[j], setup.config, fresh)
        for key, (t, jj) in held.items():
            if jj == j:
                cache.put(key, t, fresh.get(key, t))


def run_chunk(ctx: Any, chunk: dict[str, Any]) -> dict[str, Any]:
    """Image the batches at positions ``chunk["batches"]`` into ``batch_<i>/`` here."""
    from .plugin import _batch_of_offset

    a, b = (int(v) for v in chunk["batches"])
    extra = ctx.params["extra"]
    formats = {extra["output"]} if isinstance(extra["output"], str) else set(extra["output"])
    with _scratch() as scratch:
        setup = _Setup(ctx, Path(scratch))
        cache = PsfCache(PSF_CACHE_S)
        seed_cache(setup, setup.batches[:a], cache)
        summaries, dyn, last = [], [], None
        for k, batch in enumerate(setup.batches[a:b]):
            ctx.progress(k / (b - a), f"batch {batch.index}")
            result = process_batch(setup.ds, batch, setup.calib, setup.config, cache, xp=ctx.xp)
            result.summary["flags"]["dropped_frames"] = [d for d in setup.dropped if _batch_of_offset(d, batch)]
            write_batch(ctx.output_dir, result, formats)
            summaries.append(json.loads(json.dumps(result.summary, default=_plain)))
            if result.dirty is not None:
                np.save(ctx.output_dir / f"peak_{batch.index}.npy", result.peak_spectrum())
                dyn.append(batch.index)
                np.save(ctx.output_dir / "last_stokes_i.npy", result.stokes_i())
                last = batch.index
    return {"batches": [a, b], "summaries": summaries, "dyn": dyn, "last": last}


def merge(ctx: Any, parts: list[ChunkPart]) -> dict[str, Any]:
    """Batch folders into the job folder, calibration files, figures and the summary."""
    from .plugin import _figures, run_summary

    extra = ctx.params["extra"]
    parts = sorted(parts, key=lambda p: p.result["batches"][0])
    with _scratch() as scratch:
        setup = _Setup(ctx, Path(scratch))
    calib = setup.calib
    ctx.save_json("calibration.json", {**calib.summary(), "dropped_frames": setup.cal_dropped})
    ctx.save_array("gains.npy", calib.gains, {"axes": ["code", "channel", "antenna"]})
    results, dyn, last_image = [], [], None
    for p in parts:
        folder = Path(p.output_dir)
        by_index = {s["batch"]: s for s in p.result["summaries"]}
        for s in p.result["summaries"]:
            src = folder / f"batch_{s['batch']}"
            if src.exists():
                shutil.move(str(src), ctx.output_dir / src.name)
            results.append(s)
        for index in p.result["dyn"]:
            dyn.append((by_index[index], np.load(folder / f"peak_{index}.npy")))
        if p.result["last"] is not None:
            last_image = (by_index[p.result["last"]], np.load(folder / "last_stokes_i.npy"))
    ctx.progress(0.96, "figures")
    _figures(ctx, dyn, last_image, calib, extra["figure_channel"])
    return run_summary(results, setup.config.npix(), setup.dropped, calib)
