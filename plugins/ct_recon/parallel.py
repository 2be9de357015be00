"""ct_recon in chunks of detector rows: plan once, reconstruct row blocks anywhere, merge.

``plan`` opens the scan, fixes the rotation centre (found once, on the middle row of the
whole selection, exactly as a single run does), saves the sinogram and centre figures and
returns one chunk per row range. Each ``run_chunk`` writes its own ``part.h5`` (never two
writers on one HDF5 file); ``merge`` moves the parts into ``chunks/`` of the job folder and
writes ``recon.h5`` with ``/exchange/data`` as an HDF5 virtual dataset over them (no copy
of the volume; the same attributes as a single run). With ``save_tiff`` the slices are
copied into one ``recon.h5`` and ``recon.tif`` instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hisci import InputError
from hisci.parallel import ChunkPart, split_range

from .figures import centre_figure, sinogram_figure, slices_figure, slices_figure_arrays
from .pipeline import ReconOptions, _sinograms, find_centre, reconstruct_scan
from .scanio import ScanError, VolumeWriter, open_scan

PLAN_FILE = "ct_plan.json"


def _options(ctx: Any, scan: Any, rows: tuple[int, int], center: float | str) -> ReconOptions:
    extra = ctx.params["extra"]
    return ReconOptions(
        rows=rows, center=center, algorithm=extra.get("algorithm", "gridrec"),
        filter_name=extra.get("filter", "shepp"), n_iter=int(extra.get("n_iter", 0)) or None,
        normalize=bool(extra.get("normalize", True)),
        flat_interpolation=bool(extra.get("flat_interpolation", False)),
        stripe_method=extra.get("stripe", "none"), stripe_size=int(extra.get("stripe_size", 21)),
        pad_mode=extra.get("pad_mode", "edge"), circle_mask=bool(extra.get("circle_mask", True)),
        memory_budget_gb=float(extra.get("memory_budget_gb", 4)),
        threads=getattr(ctx, "threads", None),
    )


def _open(ctx: Any) -> Any:
    path = ctx.input("scan")
    try:
        return open_scan(path, require_flats=bool(ctx.params["extra"].get("normalize", True)))
    except ScanError as exc:
        raise InputError(str(exc), file=path.name, pointer=exc.dataset, hint=exc.hint) from None


def plan(ctx: Any) -> list[dict[str, Any]]:
    """Row ranges of the selection, each with the one rotation centre of the job."""
    from .plugin import parse_center, parse_rows

    extra = ctx.params["extra"]
    with _open(ctx) as scan:
        try:
            r0, r1 = parse_rows(extra.get("rows", "all"), scan.n_rows)
        except ValueError as exc:
            raise InputError(str(exc), pointer="/extra/rows", given=extra.get("rows")) from None
        try:
            center = parse_center(extra.get("center", "auto"), scan.n_cols)
        except ValueError as exc:
            raise InputError(str(exc), pointer="/extra/center", given=extra.get("center")) from None
        opts = _options(ctx, scan, (r0, r1), center)
        mid = (r0 + r1) // 2
        center_vo = center_pc = None
        if isinstance(center, str):  # the centre comes first: every chunk needs it
            mid_sino = np.asarray(_sinograms(scan, mid, mid + 1, opts, np)[0])
            center_vo, center_pc, search = find_centre(mid_sino, scan.theta)
            center = float(center_vo)
            ctx.save_figure(centre_figure(search, center_pc), "centre_search")
            ctx.save_figure(sinogram_figure(mid_sino, np.rad2deg(scan.theta), center), "sinogram")
        info = {"rows": [r0, r1], "center": center, "center_vo": center_vo, "center_pc": center_pc,
                "n_cols": scan.n_cols, "layout": scan.layout, "source": scan.path.name,
                "pixel_size_um": scan.pixel_size_um}
    ctx.save_json(f"chunks/{PLAN_FILE}", info)
    # Two rows share one complex transform: chunks start on even offsets, as blocks do. With
    # a given centre the chunk that holds the middle row draws its sinogram (it reads that row
    # anyway), in parallel with the others rather than before them all.
    return [{"rows": [a, b], "center": center, "middle_row": mid,
             **({"sinogram": True} if center_vo is None and a <= mid < b else {})}
            for a, b in split_range(r0, r1, ctx, align=2)]


def run_chunk(ctx: Any, chunk: dict[str, Any]) -> dict[str, Any]:
    """Reconstruct rows ``chunk["rows"]`` into this chunk's ``part.h5``."""
    a, b = (int(v) for v in chunk["rows"])
    figures = []
    with _open(ctx) as scan:
        opts = _options(ctx, scan, (a, b), float(chunk["center"]))
        opts.middle_row = chunk.get("middle_row")

        def writer(shape: tuple[int, int, int], centre: float) -> VolumeWriter:
            return VolumeWriter(ctx.output_dir / "part.h5", shape, {"rows": f"{a}:{b}"})

        result = reconstruct_scan(scan, writer, opts, xp=ctx.xp, progress=ctx.progress)
        if chunk.get("sinogram") and result.middle_sinogram is not None:
            ctx.save_figure(sinogram_figure(result.middle_sinogram, np.rad2deg(scan.theta), result.center),
                            "sinogram")
            figures.append("sinogram")
    np.savez(ctx.output_dir / "previews.npz", **result.previews)
    return {"rows": [a, b], "file": "part.h5", "previews": "previews.npz", "figures": figures,
            "backend": result.backend,
            "seconds": round(result.seconds, 4), "recon_seconds": result.seconds_per_slice * (b - a),
            "rows_per_block": result.rows_per_block, **({"residuals": result.info["residuals"]}
                                                       if "residuals" in result.info else {})}


def merge(ctx: Any, parts: list[ChunkPart]) -> dict[str, Any]:
    """Copy the parts into one ``recon.h5`` (and ``recon.tif`` when asked), then the figures."""
    extra = ctx.params["extra"]
    info = json.loads((ctx.output_dir / "chunks" / PLAN_FILE).read_text("utf-8"))
    r0, r1 = info["rows"]
    n = int(info["n_cols"])
    attrs = {
        "units": "attenuation per pixel (mu * pixel size); divide by the pixel size for mu",
        "center": info["center"], "algorithm": extra.get("algorithm", "gridrec"),
        "filter": extra.get("filter", "shepp"), "rows": f"{r0}:{r1}",
        "orientation": "row i, column j at x = j - (n-1)/2, y = (n-1)/2 - i; "
        "s = x cos(theta) + y sin(theta) on the detector",
        "source": info["source"], "params": json.dumps(extra, default=str),
    }
    if info.get("pixel_size_um") is not None:
        attrs["pixel_size_um"] = info["pixel_size_um"]
    out_h5 = ctx.output_dir / "recon.h5"
    ordered = sorted(parts, key=lambda p: p.result["rows"][0])
    if extra.get("save_tiff"):
        _copy_parts(ordered, out_h5, ctx.output_dir / "recon.tif", (r1 - r0, n, n), attrs, r0)
    else:
        _link_parts(ordered, ctx.output_dir, out_h5, (r1 - r0, n, n), attrs, r0)
    ctx.progress(0.96, "figures")
    _collect_figures(ctx, ordered)
    ctx.save_figure(_slices(ordered, out_h5), "slices")
    seconds = sum(p.result["seconds"] for p in parts)
    summary: dict[str, Any] = {
        "center": info["center"], "center_vo": info["center_vo"],
        "center_cross_correlation": info["center_pc"], "shape": [r1 - r0, n, n],
        "rows": f"{r0}:{r1}", "rows_per_block": max(p.result["rows_per_block"] for p in parts),
        "algorithm": extra.get("algorithm", "gridrec"), "filter": extra.get("filter", "shepp"),
        "backend": parts[0].result["backend"], "on_gpu": bool(getattr(ctx, "on_gpu", False)),
        "seconds": round(seconds, 3),
        "seconds_per_slice": round(sum(p.result["recon_seconds"] for p in parts) / max(r1 - r0, 1), 4),
        "units": "attenuation per pixel", "layout": info["layout"], "output": "recon.h5",
        "hosts": sorted({p.host for p in parts}),
    }
    if extra.get("save_tiff"):
        summary["tiff"] = "recon.tif"
    if "residuals" in parts[0].result:
        summary["residuals"] = parts[0].result["residuals"]
    return summary


def _collect_figures(ctx: Any, parts: list[ChunkPart]) -> None:
    """Move the figures a chunk drew (the sinogram) into the job folder."""
    import shutil

    for part in parts:
        for name in part.result.get("figures", []):
            for suffix in (".json", ".html"):
                src, dst = Path(part.output_dir) / f"{name}{suffix}", ctx.output_dir / f"{name}{suffix}"
                if src.exists():  # a retried merge finds it moved already
                    shutil.move(src, dst)
            ctx.figures.append(f"{name}.json")


def _slices(parts: list[ChunkPart], out_h5: Path) -> Any:
    """The slices figure from the sections the chunks kept (no read of the volume); from
    ``recon.h5`` for parts made without them."""
    if not all("previews" in p.result for p in parts):
        return slices_figure(out_h5)
    xz, yz, xy = [], [], None
    for part in parts:
        with np.load(Path(part.output_dir) / part.result["previews"]) as pv:
            xz.append(pv["xz"])
            yz.append(pv["yz"])
            if "xy" in pv:
                xy = pv["xy"]
    return slices_figure_arrays(xy, np.concatenate(xz), np.concatenate(yz))


def _link_parts(parts: list[ChunkPart], out_dir: Path, out_h5: Path, shape: tuple[int, int, int],
                attrs: dict[str, Any], r0: int) -> None:
    """``recon.h5`` as an HDF5 virtual dataset over the parts, which move (a rename on the
    shared filesystem, no copy) into ``chunks/part-NNNN.h5`` next to it; relative paths, so
    the job folder can move as a whole."""
    import shutil

    import h5py

    layout = h5py.VirtualLayout(shape=shape, dtype="float32")
    (out_dir / "chunks").mkdir(exist_ok=True)
    for part in parts:
        a, b = part.result["rows"]
        name = f"chunks/part-{part.index:04d}.h5"
        src = Path(part.output_dir) / part.result["file"]
        if src.exists() or not (out_dir / name).exists():  # a retried merge finds it moved already
            shutil.move(src, out_dir / name)
        layout[a - r0:b - r0] = h5py.VirtualSource(name, "exchange/data", shape=(b - a, shape[1], shape[2]))
    with h5py.File(out_h5, "w") as fh:
        fh.attrs["implements"] = "exchange"
        ds = fh.create_virtual_dataset("exchange/data", layout, fillvalue=np.nan)
        for k, v in attrs.items():
            ds.attrs[k] = v


def _copy_parts(parts: list[ChunkPart], out_h5: Path, tiff: Path, shape: tuple[int, int, int],
                attrs: dict[str, Any], r0: int) -> None:
    """Copy the parts into one ``recon.h5`` and ``recon.tif`` (the TIFF needs every slice
    written anyway), removing each part once copied."""
    import h5py

    volume = VolumeWriter(out_h5, shape, attrs, tiff)
    try:
        for part in parts:
            a, b = part.result["rows"]
            src = Path(part.output_dir) / part.result["file"]
            with h5py.File(src, "r") as fh:
                ds = fh["exchange/data"]
                for s0 in range(0, b - a, 16):
                    volume.write(a - r0 + s0, ds[s0:min(b - a, s0 + 16)])
            src.unlink()
    finally:
        volume.close()
