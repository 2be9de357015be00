"""hisci plugin `pdf`: 2-D powder images (or a 1-D pattern) -> I(Q), S(Q), F(Q), G(r)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .background import auto_bgscale, remove_spikes, resample, subtract_background
from .fileio import iter_frames, read_image, read_mask, read_pattern, write_pdfgetx3
from .integration import Integrator1D, auto_mask, load_geometry
from .transform import PDFConfig, PDFTransformer, find_gr_peaks, parse_composition

VERSION = "0.1.0"
PATTERN_SUFFIXES = {".chi", ".xy", ".dat", ".xye", ".iq", ".txt", ".csv"}


def _input_error(message, **kw):
    from hisci.errors import InputError

    return InputError(message, **kw)


def _number_or_auto(value, field: str, allow_auto: bool = True):
    """Parse a text-field that holds a number or 'auto' (returns None for auto/empty)."""
    empty = value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto"))
    if empty and allow_auto:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _input_error(
            f"{field} = {value!r}: give a number{' or auto' if allow_auto else ''}",
            pointer=f"/extra/{field}", given=value, allowed="number or 'auto'",
        ) from None
    if not np.isfinite(number) or number < 0:
        raise _input_error(f"{field} = {value!r}: must be a finite number >= 0",
                           pointer=f"/extra/{field}", given=value, allowed=">= 0")
    return number


def _config(extra: dict) -> PDFConfig:
    composition = str(extra.get("composition", "")).strip()
    try:
        parse_composition(composition)
    except ValueError as exc:
        raise _input_error(str(exc), pointer="/extra/composition", given=composition,
                           allowed="element symbols H-Cf with optional counts") from None
    return PDFConfig(
        composition=composition,
        qmin=float(extra["qmin"]),
        qmax=float(extra["qmax"]),
        qmaxinst=float(extra["qmaxinst"]),
        rpoly=float(extra["rpoly"]),
        rmin=float(extra["rmin"]),
        rmax=float(extra["rmax"]),
        rstep=float(extra["rstep"]),
        lorch=bool(extra.get("lorch", False)),
    )


def _field_for(message: str) -> str:
    for name in ("qmaxinst", "qmax", "qmin", "rpoly", "rstep", "rmin", "rmax"):
        if message.startswith(name) or f" {name} " in message[:20]:
            return name
    return ""


def _read_patterns(ctx, extra):
    wavelength = _number_or_auto(extra.get("wavelength", "auto"), "wavelength")
    fmt = extra.get("dataformat", "auto")
    out = []
    for path in ctx.inputs("pattern"):
        try:
            q, inten, _info = read_pattern(path, fmt, wavelength)
        except ValueError as exc:
            raise _input_error(str(exc), file=path.name, pointer="/data/pattern") from None
        out.append((path.stem, q, inten))
    return out


def _integrate_images(ctx, extra, log):
    if not ctx.has_input("poni"):
        raise _input_error("poni: a .poni geometry file is required to integrate images "
                           "(or give a 1-D pattern instead)", pointer="/data/poni")
    poni = ctx.input("poni")
    try:
        ai = load_geometry(poni)
    except ValueError as exc:
        raise _input_error(str(exc), file=poni.name, pointer="/data/poni") from None
    image_paths = ctx.inputs("image")

    def frames():
        for path in image_paths:
            try:
                yield from ((path, label, frame) for label, frame in iter_frames(path))
            except ValueError as exc:
                raise _input_error(str(exc), file=path.name, pointer="/data/image") from None

    stream = frames()
    try:
        first_path, first_label, first = next(stream)
    except StopIteration:
        raise _input_error("image: no frames found", pointer="/data/image") from None
    shape = first.shape

    def load_aux(name):
        if not ctx.has_input(name):
            return None
        path = ctx.input(name)
        try:
            arr = read_mask(path) if name == "mask" else read_image(path)
        except ValueError as exc:
            raise _input_error(str(exc), file=path.name, pointer=f"/data/{name}") from None
        if arr.shape != shape:
            raise _input_error(
                f"{name} {path.name!r}: shape {arr.shape[0]}x{arr.shape[1]} does not match the image "
                f"{first_path.name!r} ({shape[0]}x{shape[1]}); give a {name} of the same detector",
                file=path.name, pointer=f"/data/{name}", given=list(arr.shape), allowed=list(shape),
            )
        return arr

    mask = load_aux("mask")
    dark = load_aux("dark")
    bg_image = load_aux("background")
    full_mask = np.zeros(shape, bool) if mask is None else mask.copy()
    threshold = float(extra.get("beamstop_threshold", 0) or 0)
    if extra.get("automask", True) or threshold > 0:
        ref = first.astype(np.float32) - (dark if dark is not None else 0)
        extra_mask = auto_mask(ref, dead=bool(extra.get("automask", True)),
                               hot=bool(extra.get("automask", True)),
                               beamstop_threshold=threshold if threshold > 0 else None)
        log.info("automatic mask: %d pixels added to %d user-masked",
                 int((extra_mask & ~full_mask).sum()), int(full_mask.sum()))
        full_mask |= extra_mask
    sigma = float(extra.get("sigmaclip", 0) or 0)
    try:
        integ = Integrator1D(
            ai, shape, npt=int(extra["npt"]), mask=full_mask,
            polarization=float(extra["polarization"]), method=extra.get("method", "full"),
            sigma_clip=sigma if sigma > 0 else None, dark=dark,
        )
    except ValueError as exc:
        raise _input_error(str(exc), file=poni.name, pointer="/data/poni") from None

    t0 = time.perf_counter()
    first_int = integ.integrate(first)
    trimmed = first_int.trimmed()
    lo = int(np.searchsorted(first_int.q, trimmed.q[0]))
    hi = lo + trimmed.q.size
    labels = []
    n_paths = max(1, len(image_paths))

    def labelled():
        yield first
        labels.append(first_label)
        for _path, label, frame in stream:
            ctx.progress(0.05 + 0.6 * min(1.0, len(labels) / (50 * n_paths)), f"integrating {label}")
            yield frame
            labels.append(label)

    q_all, rows = integ.integrate_many(labelled())
    rows = rows[:, lo:hi]
    empty = trimmed.weight <= 0          # interior empty bins: NaN, interpolated later
    rows[:, empty] = np.nan
    patterns = [(label, q_all[lo:hi], rows[k]) for k, label in enumerate(labels)]
    t_int = time.perf_counter() - t0
    background = None
    if bg_image is not None:
        bres = integ.integrate(bg_image)
        background = (bres.q[lo:hi], np.where(empty, np.nan, bres.intensity[lo:hi]))
    geometry = ai.getFit2D()
    info = {
        "wavelength_A": ai.wavelength * 1e10,
        "beam_center_px": [round(geometry["centerX"], 3), round(geometry["centerY"], 3)],
        "distance_mm": round(geometry["directDist"], 3),
        "masked_pixels": int(full_mask.sum()),
        "integration_seconds": round(t_int, 4),
        "integration_fast_path": integ.fast_path,
    }
    return patterns, background, info


def _bg_pattern(ctx, extra):
    """A background given as a 1-D pattern (pattern mode)."""
    if not ctx.has_input("background"):
        return None
    path = ctx.input("background")
    if path.suffix.lower() not in PATTERN_SUFFIXES:
        raise _input_error(
            f"background {path.name!r}: with a 1-D pattern the background must be a 1-D pattern "
            f"too (allowed {sorted(PATTERN_SUFFIXES)})", file=path.name, pointer="/data/background")
    wavelength = _number_or_auto(extra.get("wavelength", "auto"), "wavelength")
    try:
        q, inten, _ = read_pattern(path, extra.get("dataformat", "auto"), wavelength)
    except ValueError as exc:
        raise _input_error(str(exc), file=path.name, pointer="/data/background") from None
    return q, inten


def _figures(ctx, result, labels, peaks, go):
    x_label = {"iq": "Q (Å⁻¹)", "sq": "Q (Å⁻¹)", "fq": "Q (Å⁻¹)"}
    y_label = {"iq": "I(Q) (a.u.)", "sq": "S(Q)", "fq": "F(Q) (Å⁻¹)"}
    shown = list(range(min(len(labels), 8)))
    for kind in ("iq", "sq", "fq"):
        data = np.atleast_2d(getattr(result, kind))
        fig = go.Figure()
        for k in shown:
            fig.add_trace(go.Scatter(x=result.q, y=data[k], mode="lines", name=labels[k]))
        fig.update_layout(title=f"{y_label[kind]}", xaxis_title=x_label[kind], yaxis_title=y_label[kind],
                          template="plotly_white")
        ctx.save_figure(fig, kind)
    gr = np.atleast_2d(result.gr)
    fig = go.Figure()
    for k in shown:
        fig.add_trace(go.Scatter(x=result.r, y=gr[k], mode="lines", name=labels[k]))
    if peaks.size:
        heights = np.interp(peaks, result.r, gr[0])
        fig.add_trace(go.Scatter(
            x=peaks, y=heights, mode="markers+text", name="peaks",
            text=[f"{p:.3f}" for p in peaks], textposition="top center",
            marker={"symbol": "triangle-down", "size": 9, "color": "black"},
        ))
    fig.update_layout(title="G(r)", xaxis_title="r (Å)", yaxis_title="G(r) (Å⁻²)",
                      template="plotly_white", hovermode="x unified")
    ctx.save_figure(fig, "gr")
    if len(labels) > 1:
        heat = go.Figure(go.Heatmap(z=gr, x=result.r, y=list(range(len(labels))),
                                    colorscale="RdBu_r", zmid=0, colorbar={"title": "G (Å⁻²)"},
                                    customdata=np.array(labels)[:, None].repeat(gr.shape[1], 1),
                                    hovertemplate="%{customdata}<br>r=%{x:.2f} Å<br>G=%{z:.3f}<extra></extra>"))
        heat.update_layout(title="G(r) map", xaxis_title="r (Å)", yaxis_title="frame",
                           template="plotly_white")
        ctx.save_figure(heat, "gr_map")


def run(ctx):
    """Integrate (or read) patterns, subtract background, transform to G(r), save files."""
    import plotly.graph_objects as go

    log = ctx.logger
    extra = ctx.params["extra"]
    config = _config(extra)
    bg_value = extra.get("bgscale", 1)
    bgscale = None if extra.get("autobgscale", False) else _number_or_auto(bg_value, "bgscale")

    ctx.progress(0.02, "reading inputs")
    info: dict = {}
    if ctx.has_input("pattern"):
        raw = _read_patterns(ctx, extra)
        background = _bg_pattern(ctx, extra)
        mode = "pattern"
    elif ctx.has_input("image"):
        raw, background, info = _integrate_images(ctx, extra, log)
        mode = "image"
    else:
        raise _input_error("no input: give image (with poni) or pattern", pointer="/data/image")

    # one common Q grid: the first pattern's (others and the background are resampled)
    labels = [label for label, _, _ in raw]
    q = raw[0][1]
    stack = np.vstack([inten if (qq.size == q.size and np.allclose(qq, q)) else resample(qq, inten, q)
                       for _, qq, inten in raw])
    integrated = stack.copy() if mode == "image" else None
    n_spikes = 0
    if extra.get("despike", True):
        for k in range(stack.shape[0]):
            stack[k], n = remove_spikes(stack[k])
            n_spikes += n
        if n_spikes:
            log.info("removed %d single-bin spikes", n_spikes)
    bg_curve = None
    if background is not None:
        bg_curve = resample(background[0], background[1], q)
        if extra.get("despike", True):
            bg_curve, _ = remove_spikes(bg_curve)
        if bgscale is None:
            bgscale = auto_bgscale(stack[0], bg_curve)
            log.info("auto bgscale = %.4f (largest scale keeping I - s*I_bg >= 0)", bgscale)
        stack = subtract_background(stack, np.nan_to_num(bg_curve), bgscale)
    elif bgscale is None:
        bgscale = 0.0

    ctx.progress(0.7, "transforming to G(r)")
    try:
        transformer = PDFTransformer(q, config, xp=ctx.xp)
    except ValueError as exc:
        field = _field_for(str(exc))
        raise _input_error(str(exc), pointer=f"/extra/{field}" if field else "/extra",
                           allowed=[float(q[0]), float(q[-1])]) from None
    t0 = time.perf_counter()
    result = transformer.transform(stack)
    t_transform = time.perf_counter() - t0

    ctx.progress(0.85, "writing files")
    header = {
        "dataformat": "QA",
        "inputfile": ", ".join(p.name for p in (ctx.inputs("pattern") or ctx.inputs("image"))),
        "backgroundfile": ctx.input("background").name if ctx.has_input("background") else "",
        "mode": "xray",
        "composition": config.composition,
        "bgscale": float(bgscale),
        "rpoly": config.rpoly,
        "qmaxinst": config.qmaxinst,
        "qmin": config.qmin,
        "qmax": config.qmax,
        "rmin": config.rmin,
        "rmax": config.rmax,
        "rstep": config.rstep,
        "lorch": config.lorch,
        "polydegree": result.degree,
    }
    out = Path(ctx.output_dir)
    gr2 = np.atleast_2d(result.gr)
    curves = {"iq": np.atleast_2d(result.iq), "sq": np.atleast_2d(result.sq),
              "fq": np.atleast_2d(result.fq), "gr": gr2}
    scales = np.atleast_1d(result.scale)
    used = set()
    first_peaks = []
    for k, label in enumerate(labels):
        stem = label if label not in used else f"{label}_{k}"
        used.add(stem)
        for kind, data in curves.items():
            x = result.r if kind == "gr" else result.q
            write_pdfgetx3(out / f"{stem}.{kind}", x, data[k], kind,
                           {**header, "adhocscale": float(scales[min(k, scales.size - 1)])},
                           version=f"hisci-pdf {VERSION}")
        if mode == "image":
            np.savetxt(out / f"{stem}.chi", np.column_stack([q, integrated[k]]), fmt="%.6e",
                       header=f"pyFAI integrate1d of {stem} (before background subtraction)\n"
                              f"q_A^-1 I")
        pk = find_gr_peaks(result.r, gr2[k], rmin=max(1.0, config.rpoly * 0.5))
        first_peaks.append(float(pk[0]) if pk.size else None)
    peaks = find_gr_peaks(result.r, gr2[0], rmin=max(1.0, config.rpoly * 0.5))
    if len(labels) > 1:
        np.save(out / "gr_stack.npy", gr2)
    _figures(ctx, result, labels, peaks, go)
    ctx.progress(1.0, "done")
    summary = {
        "mode": mode,
        "n_frames": len(labels),
        "frames": labels[:1000],
        "first_peak_r": first_peaks[0],
        "first_peak_r_per_frame": first_peaks if len(labels) > 1 else None,
        "peaks_r": [round(float(p), 4) for p in peaks[:10]],
        "q_range_data": [round(float(q[0]), 5), round(float(q[-1]), 5)],
        "q_range_used": [max(config.qmin, round(float(q[0]), 5)), config.qmax],
        "poly_degree": result.degree,
        "bgscale": float(bgscale),
        "spikes_removed": n_spikes,
        "transform_seconds": round(t_transform, 5),
        **info,
    }
    return summary
