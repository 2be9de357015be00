"""The files of one imaged batch: npy cubes, CLEAN components, FITS, UVFITS, images.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import fitsio
from .pipeline import BatchResult


def write_batch(folder: Path, result: BatchResult, formats: set[str]) -> Path:
    """Write ``batch_<i>/`` under ``folder`` in the chosen ``formats`` (npy, fits, uvfits).

    Always writes ``images.json`` (the batch summary); ``npy`` is the default when no
    format is chosen.
    """
    d = Path(folder) / f"batch_{result.index}"
    d.mkdir(exist_ok=True)
    if result.dirty is not None and ("npy" in formats or not formats):
        np.save(d / "dirty.npy", result.dirty.astype(np.float32))
        if result.restored is not None:
            np.save(d / "clean.npy", result.restored.astype(np.float32))
            nz = np.nonzero(np.nan_to_num(result.models))
            np.savez_compressed(d / "components.npz", index=np.stack(nz).astype(np.int32),
                                flux=result.models[nz].astype(np.float32),
                                shape=np.array(result.models.shape))
    if result.dirty is not None and "fits" in formats:
        fitsio.write_batch_fits(d, result)
    if result.calibrated and "uvfits" in formats:
        fitsio.write_batch_uvfits(d, result)
    (d / "images.json").write_text(json.dumps(result.summary, indent=1, default=_plain), encoding="utf-8")
    return d


def _plain(value: object) -> object:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value))
