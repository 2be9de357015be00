"""pdf in chunks of frames: a series of detector images is integrated range by range.

Integration is the costly step and each frame's I(Q) depends only on the frame and on the
integrator, which every chunk builds from the series' first frame (mask and kept bins), as
a single run does. A chunk saves its rows (``iq_rows.npy``); ``merge`` stacks them in frame
order and runs the rest of the pipeline (:func:`.plugin.analyse`: background, G(r), files,
figures) on the whole series. A 1-D pattern input, or a single frame, runs whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hisci import InputError
from hisci.parallel import ChunkPart, split_range

from . import pipeline
from .fileio import _find_h5_image, _split_h5, iter_frames
from .integration import load_geometry

HDF5_SUFFIXES = {".h5", ".hdf5", ".nxs", ".hdf"}


def _count(path: Path) -> int:
    """Frames in one image file, reading no pixels where the format allows."""
    file_path, dset = _split_h5(path)
    if file_path.suffix.lower() in HDF5_SUFFIXES or dset is not None:
        import h5py

        try:
            with h5py.File(file_path, "r") as h5:
                data = h5[dset.lstrip("/") if dset else _find_h5_image(h5)]
                return int(data.shape[0]) if data.ndim == 3 else 1
        except (OSError, KeyError, ValueError):
            return sum(1 for _ in iter_frames(path))  # let the reader name the problem
    import fabio

    try:
        return int(getattr(fabio.open(str(file_path)), "nframes", 1) or 1)
    except Exception:  # noqa: BLE001 - the reader names the problem when the run reads it
        return sum(1 for _ in iter_frames(path))


def _frames(paths: list[Path], a: int, b: int) -> Iterator[tuple[str, np.ndarray]]:
    """(label, frame) of global frames ``a..b-1`` across the image files, in order."""
    start = 0
    for path in paths:
        n = _count(path)
        if start + n > a and start < b:
            file_path, dset = _split_h5(path)
            if n > 1 and (file_path.suffix.lower() in HDF5_SUFFIXES or dset is not None):
                import h5py

                with h5py.File(file_path, "r") as h5:
                    data = h5[dset.lstrip("/") if dset else _find_h5_image(h5)]
                    for i in range(max(a - start, 0), min(b - start, n)):
                        yield f"{file_path.stem}_{i:05d}", np.asarray(data[i])
            else:
                for i, item in enumerate(iter_frames(path)):
                    if a <= start + i < b:
                        yield item
        start += n


def plan(ctx: Any) -> list[dict[str, Any]] | None:
    """Ranges of frame indices over the image inputs; None (run whole) otherwise."""
    from .plugin import check_settings

    if ctx.has_input("pattern") or not ctx.has_input("image"):
        return None
    check_settings(ctx)
    n = sum(_count(p) for p in ctx.inputs("image"))
    if n < 2:
        return None
    return [{"frames": [a, b]} for a, b in split_range(0, n, ctx)]


def _integrator(ctx: Any) -> tuple[pipeline.FrameIntegrator, np.ndarray, np.ndarray | None]:
    from .plugin import _aux_image

    extra = ctx.params["extra"]
    if not ctx.has_input("poni"):
        raise InputError("poni: a .poni geometry file is required to integrate images",
                         pointer="/data/poni")
    poni = ctx.input("poni")
    with ctx.field("/data/poni", file=poni):
        ai = load_geometry(poni)
    paths = ctx.inputs("image")
    with ctx.field("/data/image", file=paths[0]):
        _, first = next(_frames(paths, 0, 1))
    dark = _aux_image(ctx, "dark", first.shape, paths[0])
    with ctx.field("/data/poni", file=poni):
        setup = pipeline.setup_integrator(
            ai, first, npt=extra["npt"], polarization=extra["polarization"], method=extra["method"],
            mask=_aux_image(ctx, "mask", first.shape, paths[0]), dark=dark,
            automask=bool(extra["automask"]), beamstop_threshold=float(extra["beamstop_threshold"] or 0),
            sigmaclip=float(extra["sigmaclip"] or 0), logger=ctx.logger)
    bg_image = _aux_image(ctx, "background", first.shape, paths[0])
    return setup, first, bg_image


def run_chunk(ctx: Any, chunk: dict[str, Any]) -> dict[str, Any]:
    """Integrate frames ``chunk["frames"]`` with the series' integrator."""
    a, b = (int(v) for v in chunk["frames"])
    setup, first, bg_image = _integrator(ctx)
    labels: list[str] = []

    def frames() -> Iterator[np.ndarray]:
        if a > 0:  # the series' first frame goes first, as in a single run (it builds the
            yield first  # fast path that every later frame uses); its row is dropped below
        with ctx.field("/data/image", file=ctx.inputs("image")[0]):
            for label, frame in _frames(ctx.inputs("image"), a, b):
                labels.append(label)
                ctx.progress(len(labels) / (b - a), f"integrating {label}")
                yield frame

    t0 = time.perf_counter()
    rows = setup.process_frames(frames())[1 if a > 0 else 0:]
    np.save(ctx.output_dir / "iq_rows.npy", rows)
    np.save(ctx.output_dir / "q.npy", setup.q)
    result: dict[str, Any] = {"frames": [a, b], "labels": labels,
                              "integration_seconds": round(time.perf_counter() - t0, 4)}
    if a == 0:  # the series' facts and background, once
        result["info"] = setup.info()
        if bg_image is not None:
            np.save(ctx.output_dir / "background.npy", setup.background(bg_image))
    return result


def merge(ctx: Any, parts: list[ChunkPart]) -> dict[str, Any]:
    """Stack the rows in frame order, then background, G(r), files and figures."""
    from .plugin import analyse

    parts = sorted(parts, key=lambda p: p.result["frames"][0])
    first = Path(parts[0].output_dir)
    q = np.load(first / "q.npy")
    raw = []
    for p in parts:
        rows = np.load(Path(p.output_dir) / "iq_rows.npy")
        raw += [(label, q, rows[k]) for k, label in enumerate(p.result["labels"])]
    background = (q, np.load(first / "background.npy")) if (first / "background.npy").exists() else None
    info = {**parts[0].result["info"],
            "integration_seconds": round(sum(p.result["integration_seconds"] for p in parts), 4)}
    return analyse(ctx, raw, background, info, "image")
