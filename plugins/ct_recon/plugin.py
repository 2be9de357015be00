"""hisci entry point for ct_recon: reads the form, runs :mod:`.pipeline`, saves outputs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from hisci import InputError, RunContext

from .figures import centre_figure, sinogram_figure, slices_figure_arrays
from .parallel import merge, plan, run_chunk  # noqa: F401 - runtime.parallel: chunks of rows
from .pipeline import ReconOptions, reconstruct_scan, tomopy_available
from .scanio import ScanError, VolumeWriter, open_scan


def parse_rows(text: Any, n_rows: int) -> tuple[int, int]:
    """``"all"`` -> (0, n); ``"a:b"`` -> (a, b); ``"k"`` -> (k, k + 1). Raises ValueError."""
    s = str(text).strip().lower()
    if s in ("", "all"):
        return 0, n_rows
    try:
        if ":" in s:
            a, b = s.split(":", 1)
            r0 = int(a) if a.strip() else 0
            r1 = int(b) if b.strip() else n_rows
        else:
            r0 = int(float(s))
            r1 = r0 + 1
    except ValueError:
        raise ValueError(f"rows {text!r} is not 'all', 'start:stop' or a row number") from None
    if not (0 <= r0 < r1 <= n_rows):
        raise ValueError(f"rows {text!r} are outside the detector's rows 0:{n_rows}")
    return r0, r1


def parse_center(text: Any, n_cols: int) -> float | str:
    """``"auto"`` or a number of detector pixels in [0, n_cols - 1]. Raises ValueError."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().lower()
        if s in ("", "auto"):
            return "auto"
        try:
            value = float(s)
        except ValueError:
            raise ValueError(f"center {text!r} is neither 'auto' nor a number") from None
    if not (0.0 <= value <= n_cols - 1):
        raise ValueError(
            f"center {value} is outside the detector (0 to {n_cols - 1} pixels; the middle is "
            f"{(n_cols - 1) / 2})"
        )
    return value


def run(ctx: RunContext) -> dict[str, Any]:
    extra = ctx.params["extra"]
    path = ctx.input("scan")
    algorithm = extra["algorithm"]
    if algorithm == "tomopy_gridrec" and not tomopy_available():
        raise InputError(
            "algorithm 'tomopy_gridrec' needs TomoPy, which is not installed on this worker "
            "(TomoPy is not on PyPI)",
            pointer="/extra/algorithm", given=algorithm, allowed=["gridrec", "fbp", "sirt", "cgls"],
            hint="choose 'gridrec' (hisci's own gridrec-class method) or install tomopy from conda-forge",
        )
    ctx.progress(0.0, f"opening {path.name}")
    try:
        scan = open_scan(path, require_flats=bool(extra["normalize"]))
    except ScanError as exc:
        raise InputError(str(exc), file=path.name, pointer=exc.dataset, hint=exc.hint) from None
    with scan:
        for note in scan.notes:
            ctx.logger.warning(note)
        with ctx.field("rows") as text:
            rows = parse_rows(text, scan.n_rows)
        with ctx.field("center", hint="give the rotation axis in detector pixels (pixel k centred at k) "
                       "or 'auto'") as text:
            center = parse_center(text, scan.n_cols)
        opts = ReconOptions(
            rows=rows, center=center, algorithm=algorithm, filter_name=extra["filter"],
            n_iter=extra["n_iter"] or None, normalize=bool(extra["normalize"]),
            flat_interpolation=bool(extra["flat_interpolation"]), stripe_method=extra["stripe"],
            stripe_size=extra["stripe_size"], pad_mode=extra["pad_mode"],
            circle_mask=bool(extra["circle_mask"]), memory_budget_gb=float(extra["memory_budget_gb"]),
            threads=ctx.threads,
        )
        out_h5 = ctx.output_dir / "recon.h5"
        tiff = ctx.output_dir / "recon.tif" if extra["save_tiff"] else None

        def writer(shape: tuple[int, int, int], centre: float) -> VolumeWriter:
            attrs = {
                "units": "attenuation per pixel (mu * pixel size); divide by the pixel size for mu",
                "center": centre,
                "algorithm": opts.algorithm,
                "filter": opts.filter_name,
                "rows": f"{opts.rows[0]}:{opts.rows[1]}" if opts.rows else "all",
                "orientation": "row i, column j at x = j - (n-1)/2, y = (n-1)/2 - i; "
                "s = x cos(theta) + y sin(theta) on the detector",
                "source": path.name,
                "params": json.dumps(extra, default=str),
            }
            if scan.pixel_size_um is not None:
                attrs["pixel_size_um"] = scan.pixel_size_um
            return VolumeWriter(out_h5, shape, attrs, tiff)

        ctx.logger.info(
            "scan %s: %s, %d projections, %d rows x %d columns", path.name, scan.layout,
            scan.n_proj, scan.n_rows, scan.n_cols,
        )
        with ctx.field("/data/scan", file=path):
            result = reconstruct_scan(scan, writer, opts, xp=ctx.xp, progress=ctx.progress)
        theta_deg = np.rad2deg(scan.theta)

    ctx.progress(0.96, "figures")
    pv = result.previews
    ctx.save_figure(slices_figure_arrays(pv["xy"], pv["xz"], pv["yz"]), "slices")
    ctx.save_figure(sinogram_figure(result.middle_sinogram, theta_deg, result.center), "sinogram")
    if result.search is not None:
        ctx.save_figure(centre_figure(result.search, result.center_pc), "centre_search")
    summary: dict[str, Any] = {
        "center": result.center,
        "center_vo": result.center_vo,
        "center_cross_correlation": result.center_pc,
        "shape": list(result.shape),
        "rows": f"{result.rows[0]}:{result.rows[1]}",
        "rows_per_block": result.rows_per_block,
        "algorithm": opts.algorithm,
        "filter": opts.filter_name,
        "backend": result.backend,
        "on_gpu": ctx.on_gpu,
        "seconds": round(result.seconds, 3),
        "seconds_per_slice": round(result.seconds_per_slice, 4),
        "units": "attenuation per pixel",
        "layout": scan.layout,
        "output": "recon.h5",
    }
    if tiff is not None:
        summary["tiff"] = "recon.tif"
    if "residuals" in result.info:
        summary["residuals"] = result.info["residuals"]
        summary["seconds_per_iteration"] = result.info["seconds_per_iteration"]
    return summary
