"""hisci plugin `pdf`: 2-D powder images (or a 1-D pattern) -> I(Q), S(Q), F(Q), G(r).

``run`` reads the request and the inputs; the steps live in :mod:`.pipeline`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hisci import InputError, RunContext

from . import pipeline
from .figures import save_figures
from .fileio import iter_frames, read_image, read_mask, read_pattern
from .integration import load_geometry
from .live import run_live  # noqa: F401 - live mode (runtime.live)
from .parallel import merge, plan, run_chunk  # noqa: F401 - runtime.parallel: chunks of frames
from .transform import PDFConfig, find_gr_peaks, parse_composition

PATTERN_SUFFIXES = {".chi", ".xy", ".dat", ".xye", ".iq", ".txt", ".csv"}


def number_or_auto(value: object) -> float | None:
    """A text field holding a number >= 0 or 'auto' (None for auto or empty).

    Raises
    ------
    ValueError
        Neither a number nor 'auto', or a negative or non-finite number.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r}: give a number or auto") from None
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"{value!r}: must be a finite number >= 0")
    return number


def read_config(ctx: RunContext) -> PDFConfig:
    """The transform settings of the request."""
    extra = ctx.params["extra"]
    with ctx.field("composition") as composition:
        parse_composition(str(composition).strip())
    return PDFConfig(
        composition=str(composition).strip(), qmin=float(extra["qmin"]), qmax=float(extra["qmax"]),
        qmaxinst=float(extra["qmaxinst"]), rpoly=float(extra["rpoly"]), rmin=float(extra["rmin"]),
        rmax=float(extra["rmax"]), rstep=float(extra["rstep"]), lorch=bool(extra["lorch"]),
    )


def check_settings(ctx: RunContext) -> None:
    """Refuse bad transform settings before any frame is integrated."""
    read_config(ctx)
    with ctx.field("bgscale") as text:
        if not ctx.params["extra"]["autobgscale"]:
            number_or_auto(text)


def read_patterns(ctx: RunContext, name: str = "pattern") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The 1-D patterns given as input ``name``, as (label, Q, I)."""
    with ctx.field("wavelength") as text:
        wavelength = number_or_auto(text)
    out = []
    for path in ctx.inputs(name):
        with ctx.field(f"/data/{name}", file=path):
            q, inten, _info = read_pattern(path, ctx.params["extra"]["dataformat"], wavelength)
        out.append((path.stem, q, inten))
    return out


def background_pattern(ctx: RunContext) -> tuple[np.ndarray, np.ndarray] | None:
    """A background given as a 1-D pattern (pattern mode)."""
    if not ctx.has_input("background"):
        return None
    path = ctx.input("background")
    if path.suffix.lower() not in PATTERN_SUFFIXES:
        raise InputError(f"background {path.name!r}: with a 1-D pattern the background must be a 1-D "
                         f"pattern too (allowed {sorted(PATTERN_SUFFIXES)})",
                         file=path.name, pointer="/data/background")
    (_, q, inten), = read_patterns(ctx, "background")
    return q, inten


def _aux_image(ctx: RunContext, name: str, shape: tuple[int, ...], first: Path) -> np.ndarray | None:
    if not ctx.has_input(name):
        return None
    path = ctx.input(name)
    with ctx.field(f"/data/{name}", file=path):
        arr = read_mask(path) if name == "mask" else read_image(path)
    if arr.shape != shape:
        raise InputError(
            f"{name} {path.name!r}: shape {arr.shape[0]}x{arr.shape[1]} does not match the image "
            f"{first.name!r} ({shape[0]}x{shape[1]}); give a {name} of the same detector",
            file=path.name, pointer=f"/data/{name}", given=list(arr.shape), allowed=list(shape))
    return arr


def integrate_images(ctx: RunContext) -> tuple[list, tuple | None, dict]:
    """Integrate every frame of the image inputs: (patterns, background, summary facts)."""
    extra = ctx.params["extra"]
    if not ctx.has_input("poni"):
        raise InputError("poni: a .poni geometry file is required to integrate images "
                         "(or give a 1-D pattern instead)", pointer="/data/poni")
    poni = ctx.input("poni")
    with ctx.field("/data/poni", file=poni):
        ai = load_geometry(poni)
    image_paths = ctx.inputs("image")

    def frames():
        for path in image_paths:
            with ctx.field("/data/image", file=path):
                yield from ((path, label, frame) for label, frame in iter_frames(path))

    stream = frames()
    first_path, first_label, first = next(stream, (None, None, None))
    if first is None:
        raise InputError("image: no frames found", pointer="/data/image")
    dark = _aux_image(ctx, "dark", first.shape, first_path)
    with ctx.field("/data/poni", file=poni):
        setup = pipeline.setup_integrator(
            ai, first, npt=extra["npt"], polarization=extra["polarization"], method=extra["method"],
            mask=_aux_image(ctx, "mask", first.shape, first_path), dark=dark,
            automask=bool(extra["automask"]), beamstop_threshold=float(extra["beamstop_threshold"] or 0),
            sigmaclip=float(extra["sigmaclip"] or 0), logger=ctx.logger)
    bg_image = _aux_image(ctx, "background", first.shape, first_path)
    labels = [first_label]
    t0 = time.perf_counter()
    with ctx.progress_span(0.05, 0.65):
        def labelled():
            yield first
            for _path, label, frame in stream:
                ctx.progress(min(1.0, len(labels) / (50 * max(1, len(image_paths)))), f"integrating {label}")
                labels.append(label)
                yield frame

        rows = setup.process_frames(labelled())
    info = {**setup.info(), "integration_seconds": round(time.perf_counter() - t0, 4)}
    background = None if bg_image is None else (setup.q, setup.background(bg_image))
    return [(label, setup.q, rows[k]) for k, label in enumerate(labels)], background, info


def run(ctx: RunContext) -> dict:
    """Integrate (or read) patterns, subtract background, transform to G(r), save files."""
    check_settings(ctx)

    ctx.progress(0.02, "reading inputs")
    info: dict = {}
    if ctx.has_input("pattern"):
        raw, background, mode = read_patterns(ctx), background_pattern(ctx), "pattern"
    elif ctx.has_input("image"):
        (raw, background, info), mode = integrate_images(ctx), "image"
    else:
        raise InputError("no input: give image (with poni) or pattern", pointer="/data/image")
    return analyse(ctx, raw, background, info, mode)


def analyse(ctx: RunContext, raw: list, background: tuple | None, info: dict, mode: str) -> dict:
    """Patterns (label, Q, I) -> corrected stack -> G(r), files, figures and the summary
    (shared by ``run`` and the merge of a chunked series, :mod:`.parallel`)."""
    extra = ctx.params["extra"]
    config = read_config(ctx)
    with ctx.field("bgscale") as text:
        bgscale = None if extra["autobgscale"] else number_or_auto(text)
    labels = [label for label, _, _ in raw]
    q, stack = pipeline.common_grid(raw)
    corrected = pipeline.correct(stack, q, background, bgscale, despike=bool(extra["despike"]),
                                 logger=ctx.logger)

    ctx.progress(0.7, "transforming to G(r)")
    try:
        result, t_transform = pipeline.transform(q, corrected.stack, config, xp=ctx.xp)
    except ValueError as exc:
        name = pipeline.setting_named(str(exc))
        raise InputError(str(exc), pointer=f"/extra/{name}" if name else "/extra",
                         allowed=[float(q[0]), float(q[-1])]) from None

    ctx.progress(0.85, "writing files")
    header = pipeline.file_header(
        config, corrected.bgscale, result.degree,
        ", ".join(p.name for p in (ctx.inputs("pattern") or ctx.inputs("image"))),
        ctx.input("background").name if ctx.has_input("background") else "")
    first_peaks = pipeline.write_outputs(ctx.output_dir, labels, q, result, config, header,
                                         integrated=stack if mode == "image" else None)
    gr = np.atleast_2d(result.gr)
    peaks = find_gr_peaks(result.r, gr[0], rmin=pipeline.peak_rmin(config))
    if len(labels) > 1:
        ctx.save_array("gr_stack.npy", gr, {"axes": ["frame", "r"], "r_min": float(result.r[0]),
                                            "r_step": config.rstep, "frames": labels})
    save_figures(ctx, result, labels, peaks)
    ctx.progress(1.0, "done")
    return {
        "mode": mode,
        "n_frames": len(labels),
        "frames": labels[:1000],
        "first_peak_r": first_peaks[0],
        "first_peak_r_per_frame": first_peaks if len(labels) > 1 else None,
        "peaks_r": [round(float(p), 4) for p in peaks[:10]],
        "q_range_data": [round(float(q[0]), 5), round(float(q[-1]), 5)],
        "q_range_used": [max(config.qmin, round(float(q[0]), 5)), config.qmax],
        "poly_degree": result.degree,
        "bgscale": corrected.bgscale,
        "spikes_removed": corrected.spikes_removed,
        "transform_seconds": round(t_transform, 5),
        **info,
    }
