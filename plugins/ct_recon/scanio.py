"""Reading tomography scans (Data Exchange or NeXus NXtomo) by row blocks, and writing volumes.

Nothing here reads a whole scan: :class:`Scan` keeps the file open and :meth:`Scan.read_rows`
returns one block of detector rows (``data[:, r0:r1, :]`` by h5py slicing) with the matching
flats and darks. Every problem with a file raises :class:`ScanError`, a ``ValueError`` whose
message names the dataset and says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

__all__ = ["Scan", "ScanError", "VolumeWriter", "open_scan", "rows_per_block"]


class ScanError(ValueError):
    """A scan file is unusable; ``dataset`` is the HDF5 path at fault, ``hint`` the fix."""

    def __init__(self, message: str, *, file: str = "", dataset: str = "", hint: str = "") -> None:
        text = f"{file}: {dataset}: {message}" if dataset else f"{file}: {message}"
        if hint:
            text += f". Fix: {hint}"
        super().__init__(text)
        self.file = file
        self.dataset = dataset
        self.hint = hint
        self.reason = message


@dataclass
class Scan:
    """An open scan: frame datasets, which frames are projections/flats/darks, angles (radians).

    Use :func:`open_scan`; close with :meth:`close` or a ``with`` block.
    """

    path: Path
    layout: str  # "data-exchange" or "nxtomo"
    h5: Any
    data: Any  # h5py.Dataset of projection frames (or of all frames for NXtomo)
    theta: np.ndarray  # radians, one per projection
    proj_index: np.ndarray | slice
    flats: Any = None
    flat_index: np.ndarray | slice | None = None
    darks: Any = None
    dark_index: np.ndarray | slice | None = None
    data_path: str = "/exchange/data"
    flat_path: str = "/exchange/data_white"
    dark_path: str = "/exchange/data_dark"
    pixel_size_um: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_proj(self) -> int:
        return int(self.theta.size)

    @property
    def n_rows(self) -> int:
        return int(self.data.shape[1])

    @property
    def n_cols(self) -> int:
        return int(self.data.shape[2])

    @property
    def nbytes_per_row(self) -> int:
        """Bytes of one detector row over all projections (as stored)."""
        return self.n_proj * self.n_cols * self.data.dtype.itemsize

    def _read(self, ds: Any, index: Any, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
        if isinstance(index, slice):
            if out is not None and out.dtype == ds.dtype:
                ds.read_direct(out, np.s_[index, r0:r1, :])
                return out
            return ds[index, r0:r1, :]
        return ds[index, r0:r1, :]  # h5py fancy indexing on the first axis (sorted indices)

    def read_rows(self, r0: int, r1: int, out: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Projections, flats and darks for detector rows ``r0:r1``; the projections go into
        ``out`` (C-contiguous, shape (n_proj, r1 - r0, n_cols), the dataset's dtype) when it is
        given and the projections are a slice of the dataset.

        Returns
        -------
        projections : ndarray of shape (n_proj, r1 - r0, n_cols)
        flats : ndarray of shape (n_flats, r1 - r0, n_cols) or None
        darks : ndarray of shape (n_darks, r1 - r0, n_cols) or None
        """
        proj = self._read(self.data, self.proj_index, r0, r1, out)
        flats = None if self.flats is None else self._read(self.flats, self.flat_index, r0, r1)
        darks = None if self.darks is None else self._read(self.darks, self.dark_index, r0, r1)
        return proj, flats, darks

    def close(self) -> None:
        self.h5.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _angles(ds: Any, file: str, name: str, default_unit: str = "degrees") -> np.ndarray:
    values = np.asarray(ds[()], dtype=np.float64).ravel()
    units = ds.attrs.get("units", default_unit)
    units = units.decode() if isinstance(units, bytes) else str(units)
    u = units.strip().lower()
    if u in ("rad", "radian", "radians"):
        return values
    if u in ("deg", "degree", "degrees", ""):
        return np.deg2rad(values)
    raise ScanError(
        f"unknown angle units {units!r}", file=file, dataset=name,
        hint="set the 'units' attribute to 'degrees' or 'radians'",
    )


def _check_3d(ds: Any, file: str, name: str) -> None:
    if ds.ndim != 3:
        raise ScanError(
            f"expected a 3-D stack [frame, row, column], got shape {ds.shape}",
            file=file, dataset=name, hint="store frames as a 3-D dataset",
        )


def _check_frames(ds: Any, ref_shape: tuple[int, ...], file: str, name: str, what: str) -> None:
    _check_3d(ds, file, name)
    if tuple(ds.shape[1:]) != tuple(ref_shape[1:]):
        raise ScanError(
            f"{what} frames are {ds.shape[1]}x{ds.shape[2]} (rows x columns) but the projections "
            f"are {ref_shape[1]}x{ref_shape[2]}",
            file=file, dataset=name,
            hint=f"give {what} frames of the detector size [n, {ref_shape[1]}, {ref_shape[2]}] "
            "(same binning and region of interest as the projections)",
        )
    if ds.shape[0] == 0:
        raise ScanError(f"no {what} frames", file=file, dataset=name, hint=f"record at least one {what} frame")


def open_scan(path: str | Path, require_flats: bool = True) -> Scan:
    """Open a Data Exchange or NXtomo HDF5 scan and check its datasets.

    Parameters
    ----------
    path : path
        HDF5 file with ``/exchange/data`` (Data Exchange) or an ``NXentry`` holding
        ``instrument/detector/data`` with ``image_key`` and ``sample/rotation_angle`` (NXtomo).
    require_flats : bool
        Raise if there are no flat fields (normalization needs them).

    Returns
    -------
    Scan

    Raises
    ------
    ScanError
        Naming the dataset (missing data, angles not matching the projections, flats or darks of
        the wrong shape, unknown units, unreadable file) and the fix.
    """
    import h5py

    path = Path(path)
    file = path.name
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise ScanError(
            f"not a readable HDF5 file ({exc})", file=file,
            hint="upload a Data Exchange or NXtomo .h5/.hdf5 file",
        ) from None
    try:
        if "exchange" in h5:
            scan = _open_dxchange(path, h5, require_flats)
        else:
            scan = _open_nxtomo(path, h5, require_flats)
    except Exception:
        h5.close()
        raise
    return scan


def _open_dxchange(path: Path, h5: Any, require_flats: bool) -> Scan:
    file = path.name
    ex = h5["exchange"]
    if "data" not in ex:
        raise ScanError(
            "missing: no projection stack", file=file, dataset="/exchange/data",
            hint="write projections as /exchange/data [angle, row, column] (Data Exchange layout)",
        )
    data = ex["data"]
    _check_3d(data, file, "/exchange/data")
    n_proj = data.shape[0]
    notes: list[str] = []
    if "theta" in ex:
        theta = _angles(ex["theta"], file, "/exchange/theta")
        if theta.size != n_proj:
            raise ScanError(
                f"has {theta.size} angles but /exchange/data has {n_proj} projections",
                file=file, dataset="/exchange/theta",
                hint=f"give exactly one angle per projection ({n_proj} values, in degrees)",
            )
    else:
        raise ScanError(
            "missing: no rotation angles", file=file, dataset="/exchange/theta",
            hint=f"write the {n_proj} projection angles in degrees to /exchange/theta "
            "(hisci never guesses the angular range or its end point)",
        )
    flats = ex.get("data_white")
    darks = ex.get("data_dark")
    if flats is not None:
        _check_frames(flats, data.shape, file, "/exchange/data_white", "flat")
    elif require_flats:
        raise ScanError(
            "missing: no flat (white) fields", file=file, dataset="/exchange/data_white",
            hint="add flat-field frames [n, rows, columns], or choose normalize: off if the "
            "projections are already normalized",
        )
    if darks is not None:
        _check_frames(darks, data.shape, file, "/exchange/data_dark", "dark")
    else:
        notes.append("no /exchange/data_dark: dark current taken as 0")
    pixel = None
    res = "measurement/instrument/detection_system/objective/resolution"
    if res in h5:
        try:
            pixel = float(np.asarray(h5[res][()]).ravel()[0])
        except (TypeError, ValueError, IndexError):
            pixel = None
    return Scan(
        path, "data-exchange", h5, data, theta, slice(None), flats,
        None if flats is None else slice(None), darks, None if darks is None else slice(None),
        pixel_size_um=pixel, notes=notes,
    )


def _find_entry(h5: Any) -> tuple[str, Any]:
    for name, obj in h5.items():
        cls = obj.attrs.get("NX_class", b"") if hasattr(obj, "attrs") else b""
        cls = cls.decode() if isinstance(cls, bytes) else str(cls)
        if cls == "NXentry" or name == "entry":
            return name, obj
    return "", None


def _open_nxtomo(path: Path, h5: Any, require_flats: bool) -> Scan:
    file = path.name
    name, entry = _find_entry(h5)
    if entry is None:
        raise ScanError(
            "missing: neither /exchange (Data Exchange) nor an NXentry (NXtomo) found",
            file=file, dataset="/exchange/data",
            hint="write projections as /exchange/data with data_white, data_dark and theta, or "
            "as NXtomo /entry/instrument/detector/data with image_key and sample/rotation_angle",
        )
    base = f"/{name}"
    data_path = next(
        (p for p in ("instrument/detector/data", "data/data", "tomo/data") if p in entry), None
    )
    if data_path is None:
        raise ScanError(
            "missing: no detector frames", file=file, dataset=f"{base}/instrument/detector/data",
            hint="store all frames (darks, flats, projections) in one 3-D dataset with image_key",
        )
    data = entry[data_path]
    _check_3d(data, file, f"{base}/{data_path}")
    key_path = next(
        (p for p in ("instrument/detector/image_key", "data/image_key", "tomo/image_key") if p in entry),
        None,
    )
    n = data.shape[0]
    if key_path is None:
        raise ScanError(
            "missing: no image_key", file=file, dataset=f"{base}/instrument/detector/image_key",
            hint="give image_key per frame: 0 projection, 1 flat, 2 dark",
        )
    key = np.asarray(entry[key_path][()]).ravel()
    if key.size != n:
        raise ScanError(
            f"has {key.size} values but {base}/{data_path} has {n} frames",
            file=file, dataset=f"{base}/{key_path}", hint="give one image_key per frame",
        )
    ang_path = next(
        (p for p in ("sample/rotation_angle", "data/rotation_angle", "tomo/rotation_angle") if p in entry),
        None,
    )
    if ang_path is None:
        raise ScanError(
            "missing: no rotation angles", file=file, dataset=f"{base}/sample/rotation_angle",
            hint="give rotation_angle (degrees) per frame",
        )
    angles = _angles(entry[ang_path], file, f"{base}/{ang_path}")
    proj_idx = np.flatnonzero(key == 0)
    if angles.size == n:
        theta = angles[proj_idx]
    elif angles.size == proj_idx.size:
        theta = angles
    else:
        raise ScanError(
            f"has {angles.size} angles but there are {n} frames ({proj_idx.size} projections)",
            file=file, dataset=f"{base}/{ang_path}",
            hint="give one rotation_angle per frame (or per projection)",
        )
    if proj_idx.size == 0:
        raise ScanError(
            "no projections (image_key == 0)", file=file, dataset=f"{base}/{key_path}",
            hint="mark projection frames with image_key 0",
        )
    flat_idx = np.flatnonzero(key == 1)
    dark_idx = np.flatnonzero(key == 2)
    if flat_idx.size == 0 and require_flats:
        raise ScanError(
            "no flat fields (image_key == 1)", file=file, dataset=f"{base}/{key_path}",
            hint="record flat frames with image_key 1, or choose normalize: off",
        )

    def as_index(idx: np.ndarray) -> np.ndarray | slice:
        if idx.size and np.all(np.diff(idx) == 1):
            return slice(int(idx[0]), int(idx[-1]) + 1)
        return idx

    return Scan(
        path, "nxtomo", h5, data, theta, as_index(proj_idx),
        data if flat_idx.size else None, as_index(flat_idx) if flat_idx.size else None,
        data if dark_idx.size else None, as_index(dark_idx) if dark_idx.size else None,
        data_path=f"{base}/{data_path}", flat_path=f"{base}/{key_path}",
        dark_path=f"{base}/{key_path}",
    )


#: A block's own arrays (raw rows, sinograms, slices) stay under this many bytes: the
#: reconstruction works a pair of rows at a time, so bigger blocks save nothing, while every
#: block-sized array is fresh memory that the kernel zeroes (and a 2-core VM with a lazily
#: backed guest did so at 0.5 GB/s once a process passed ~1 GB: 32 rows of a 1500 x 2048 scan
#: in one block spent more system time than arithmetic).
BLOCK_BYTES = 256 << 20


def rows_per_block(scan: Scan, n_img: int, memory_budget_gb: float, max_rows: int = 64) -> int:
    """Detector rows per block so that one block's working set fits the memory budget.

    The estimate counts the raw block, its float32 copy and -log, the padded complex spectra
    (about ``4 n_angles n_cols`` complex64 per pair of rows), and the output slices. Blocks
    are also capped at :data:`BLOCK_BYTES` of raw rows, sinograms and slices.
    """
    own = scan.nbytes_per_row + 4 * scan.n_proj * scan.n_cols + 4 * n_img * n_img
    max_rows = max(2, min(max_rows, BLOCK_BYTES // max(own, 1)))
    per_row = (
        scan.nbytes_per_row
        + 2 * 4 * scan.n_proj * scan.n_cols  # float32 normalized + sinogram
        + 8 * 2 * scan.n_proj * scan.n_cols  # complex spectra on the 2x padded grid (per row)
        + 3 * 4 * n_img * n_img  # complex output / float32 slice
    )
    budget = max(memory_budget_gb, 0.0) * 1024**3
    rows = int(np.clip(budget // max(per_row, 1), 1, max_rows))
    # Even, so that rows pair into complex transforms the same way in any block or chunk.
    return rows - rows % 2 if rows > 1 else rows


class VolumeWriter:
    """Write a reconstructed volume block by block to HDF5 ``/exchange/data`` (float32).

    Parameters
    ----------
    path : path
        Output file (created).
    shape : tuple (n_slices, n_img, n_img)
    attrs : dict
        Stored on ``/exchange/data`` (JSON-able scalars and strings).
    tiff_path : path, optional
        Also append each slice to a 32-bit multi-page TIFF.
    """

    def __init__(
        self, path: str | Path, shape: tuple[int, int, int], attrs: dict[str, Any],
        tiff_path: str | Path | None = None,
    ) -> None:
        import h5py

        self.path = Path(path)
        self.h5 = h5py.File(self.path, "w")
        self.h5.attrs["implements"] = "exchange"
        self.ds = self.h5.create_dataset(
            "exchange/data", shape=shape, dtype="float32", chunks=(1, shape[1], shape[2])
        )
        for k, v in attrs.items():
            self.ds.attrs[k] = v
        self.tiff = None
        if tiff_path is not None:
            import tifffile

            self.tiff_path = Path(tiff_path)
            self.tiff = tifffile.TiffWriter(self.tiff_path, bigtiff=True)

    def write(self, start: int, block: np.ndarray) -> None:
        """Write slices ``start : start + len(block)``."""
        self.ds[start : start + block.shape[0]] = block
        if self.tiff is not None:
            for sl in block:
                self.tiff.write(np.asarray(sl, dtype=np.float32), contiguous=True)

    def close(self) -> None:
        self.h5.close()
        if self.tiff is not None:
            self.tiff.close()
