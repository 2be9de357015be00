"""pdf in live mode: each new image file in the watched folder -> I(Q) and G(r), published
at once (the integrator is built on the first frame and kept warm); when the run stops, the
batch outputs of every frame are written as a normal run would.

Published per frame (``ctx.publish("frame", ...)``): label, seq, q, iq, r, gr, first_peak_r.
"""

from __future__ import annotations

import time

import numpy as np

from hisci import InputError, RunContext

from . import pipeline
from .fileio import iter_frames
from .integration import load_geometry
from .transform import find_gr_peaks

#: Points sent per curve to the page (the files keep the full grids).
PUBLISH_POINTS = 600


def _thin(x: np.ndarray, n: int = PUBLISH_POINTS) -> np.ndarray:
    step = max(1, int(np.ceil(x.size / n)))
    return np.round(x[::step], 5)


def run_live(ctx: RunContext) -> dict:
    """Integrate and transform each frame as it arrives; batch outputs at the end."""
    from . import plugin as batch  # the batch helpers (request parsing, auxiliary images)
    from .figures import save_figures

    extra = ctx.params["extra"]
    config = batch.read_config(ctx)
    if not ctx.has_input("poni"):
        raise InputError("poni: a live pdf run integrates images, so it needs a .poni geometry file",
                         pointer="/data/poni", hint="--input poni=PATH")
    with ctx.field("/data/poni", file=ctx.input("poni")):
        ai = load_geometry(ctx.input("poni"))
    setup = background = None
    labels: list[str] = []
    rows: list[np.ndarray] = []
    seconds: list[float] = []
    for item in ctx.live_items("image"):
        try:
            frames = list(iter_frames(item.path))
        except (OSError, ValueError) as exc:  # a corrupt file is reported and skipped, the run goes on
            ctx.logger.warning("live image %s skipped: %s", item.path.name, exc)
            ctx.publish("skipped", {"file": item.path.name, "error": str(exc)[:200]})
            continue
        for label, frame in frames:
            t0 = time.perf_counter()
            if setup is None:
                setup = pipeline.setup_integrator(
                    ai, frame, npt=extra["npt"], polarization=extra["polarization"], method=extra["method"],
                    mask=batch._aux_image(ctx, "mask", frame.shape, item.path),
                    dark=batch._aux_image(ctx, "dark", frame.shape, item.path),
                    automask=bool(extra["automask"]), beamstop_threshold=float(extra["beamstop_threshold"] or 0),
                    sigmaclip=float(extra["sigmaclip"] or 0), logger=ctx.logger)
                bg_image = batch._aux_image(ctx, "background", frame.shape, item.path)
                background = None if bg_image is None else (setup.q, setup.background(bg_image))
            if frame.shape != setup.mask.shape:
                ctx.logger.warning("live image %s skipped: shape %s differs from the first frame's %s",
                                   label, frame.shape, setup.mask.shape)
                continue
            row = setup.process_frame(frame)
            result, _ = _transform(ctx, setup.q, row[None], background)
            gr = np.atleast_2d(result.gr)[0]
            peaks = find_gr_peaks(result.r, gr, rmin=pipeline.peak_rmin(config))
            seconds.append(time.perf_counter() - t0)
            ctx.publish("frame", {"label": label, "q": _thin(setup.q), "iq": _thin(row), "r": _thin(result.r),
                                  "gr": _thin(gr), "first_peak_r": round(float(peaks[0]), 4) if peaks.size else None,
                                  "seconds": round(seconds[-1], 4)})
            labels.append(label)
            rows.append(row)
    if not rows:
        ctx.logger.warning("live run stopped before any frame arrived: no outputs")
        return {"mode": "live", "n_frames": 0, "frames": []}
    stack = np.vstack(rows)
    result, bgscale = _transform(ctx, setup.q, stack, background)
    header = pipeline.file_header(config, bgscale, result.degree, f"live: {len(labels)} frames",
                                  ctx.input("background").name if ctx.has_input("background") else "")
    first_peaks = pipeline.write_outputs(ctx.output_dir, labels, setup.q, result, config, header, integrated=stack)
    gr = np.atleast_2d(result.gr)
    peaks = find_gr_peaks(result.r, gr[0], rmin=pipeline.peak_rmin(config))
    if len(labels) > 1:
        ctx.save_array("gr_stack.npy", gr, {"axes": ["frame", "r"], "r_min": float(result.r[0]),
                                            "r_step": config.rstep, "frames": labels})
    save_figures(ctx, result, labels, peaks)
    return {"mode": "live", "n_frames": len(labels), "frames": labels[:1000], "first_peak_r": first_peaks[0],
            "first_peak_r_per_frame": first_peaks if len(labels) > 1 else None,
            "frame_seconds_median": round(float(np.median(seconds)), 4), **setup.info()}


def _transform(ctx: RunContext, q: np.ndarray, stack: np.ndarray, background):
    from . import plugin as batch

    extra = ctx.params["extra"]
    with ctx.field("bgscale") as text:
        bgscale = None if extra["autobgscale"] else batch.number_or_auto(text)
    corrected = pipeline.correct(stack, q, background, bgscale, despike=bool(extra["despike"]), logger=ctx.logger)
    try:
        result, _ = pipeline.transform(q, corrected.stack, batch.read_config(ctx), xp=ctx.xp)
    except ValueError as exc:
        name = pipeline.setting_named(str(exc))
        raise InputError(str(exc), pointer=f"/extra/{name}" if name else "/extra") from None
    return result, corrected.bgscale
