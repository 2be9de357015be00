"""Reading detector images, masks and 1-D patterns; writing PDFgetX3-style text files."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = [
    "COLUMN_LABELS",
    "iter_frames",
    "read_image",
    "read_mask",
    "read_pattern",
    "read_pdfgetx3",
    "write_pdfgetx3",
]

HDF5_SUFFIXES = {".h5", ".hdf5", ".nxs", ".hdf", ".nx5"}

#: PDFgetX3 ``#L`` column labels per output type
COLUMN_LABELS = {
    "iq": ("Q(Å$^{-1}$)", "I(a.u.)"),
    "sq": ("Q(Å$^{-1}$)", "S"),
    "fq": ("Q(Å$^{-1}$)", "F(Å$^{-1}$)"),
    "gr": ("r(Å)", "G(Å$^{-2}$)"),
}


def _split_h5(path: str | Path) -> tuple[Path, str | None]:
    text = str(path)
    if "::" in text:
        file_part, dset = text.split("::", 1)
        return Path(file_part), dset
    return Path(text), None


def _find_h5_image(h5) -> str:
    """Path of the image dataset: NeXus default signal, else the largest 2-D/3-D dataset."""
    for candidate in ("entry/data/data", "entry/instrument/detector/data", "data"):
        if candidate in h5 and getattr(h5[candidate], "ndim", 0) in (2, 3):
            return candidate
    found: list[tuple[int, str]] = []

    def visit(name, obj):
        if hasattr(obj, "ndim") and obj.ndim in (2, 3) and obj.dtype.kind in "iuf":
            found.append((int(np.prod(obj.shape)), name))

    h5.visititems(visit)
    if not found:
        raise ValueError("no 2-D or 3-D numeric dataset")
    return max(found)[1]


def iter_frames(path: str | Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (label, frame) for every 2-D frame in an image file.

    Parameters
    ----------
    path : str or Path
        TIFF, EDF, CBF, ... (anything fabio reads, multi-frame included) or HDF5/NeXus;
        for HDF5 an explicit dataset may follow ``::`` (``scan.h5::/entry/data/data``),
        otherwise the NeXus default or the largest 2-D/3-D dataset is used.

    Yields
    ------
    label : str
        File stem, plus ``_00012`` (frame index) for multi-frame files.
    frame : ndarray of shape (H, W)

    Raises
    ------
    ValueError
        The file cannot be read as an image (the message names it).
    """
    file_path, dset = _split_h5(path)
    stem = file_path.stem
    if not file_path.is_file():
        raise ValueError(f"image {file_path.name!r}: not found")
    if file_path.suffix.lower() in HDF5_SUFFIXES or dset is not None:
        import h5py

        try:
            with h5py.File(file_path, "r") as h5:
                name = dset.lstrip("/") if dset else _find_h5_image(h5)
                if name not in h5:
                    raise ValueError(f"dataset {dset!r} not in the file")
                data = h5[name]
                if data.ndim == 2:
                    yield stem, np.asarray(data[()])
                elif data.ndim == 3:
                    for i in range(data.shape[0]):
                        yield f"{stem}_{i:05d}", np.asarray(data[i])
                else:
                    raise ValueError(f"dataset {name!r} has shape {data.shape}, need 2-D or 3-D")
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"image {file_path.name!r}: cannot read HDF5 image ({exc})") from None
        return
    import fabio

    try:
        img = fabio.open(str(file_path))
    except Exception as exc:  # noqa: BLE001 - fabio raises many types for unreadable files
        raise ValueError(
            f"image {file_path.name!r}: not a readable detector image ({type(exc).__name__}: {exc}); "
            "allowed: TIFF, EDF, CBF and other fabio formats, or HDF5"
        ) from None
    try:
        n = int(getattr(img, "nframes", 1) or 1)
        if n == 1:
            yield stem, np.asarray(img.data)
        else:
            for i in range(n):
                yield f"{stem}_{i:05d}", np.asarray(img.getframe(i).data)
    finally:
        close = getattr(img, "close", None)
        if close:
            close()


def read_image(path: str | Path) -> np.ndarray:
    """Read one 2-D image, float32 (H, W); a multi-frame file gives the frame average
    (the natural reading of a dark or background series)."""
    total = None
    count = 0
    for _, frame in iter_frames(path):
        total = frame.astype(np.float32) if total is None else total + frame
        count += 1
    if total is None:
        raise ValueError(f"image {Path(str(path)).name!r}: no frames")
    return total / count if count > 1 else total


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask (.npy, .npz first array, or any image file); non-zero = masked.

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            m = np.load(p, allow_pickle=False)
        elif p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as z:
                m = z[z.files[0]]
        else:
            m = read_image(p)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy/fabio raise many types for bad files
        raise ValueError(f"mask {p.name!r}: cannot read ({type(exc).__name__}: {exc}); "
                         "allowed: .npy, .npz, or an image file (EDF, TIFF, ...)") from None
    m = np.asarray(m)
    if m.ndim != 2:
        raise ValueError(f"mask {p.name!r}: need a 2-D array, got shape {m.shape}")
    return m != 0


_FLOAT = re.compile(r"^[\s]*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[\s,;]")


def read_pattern(path: str | Path, dataformat: str = "auto", wavelength: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a 1-D powder pattern (.chi, .xy, .dat, .xye, .iq) and return Q in Å⁻¹.

    Parameters
    ----------
    path : str or Path
        Whitespace/comma-separated columns x, I (extra columns ignored); lines that
        do not start with a number (``#`` headers, pyFAI and PDFgetX3 headers) are skipped.
    dataformat : {"auto", "QA", "Qnm", "twotheta"}
        Unit of x: Q in Å⁻¹, Q in nm⁻¹, or 2θ in degrees. ``auto`` reads pyFAI's
        column header (``q_A^-1``, ``q_nm^-1``, ``2th_deg``), else assumes QA.
    wavelength : float, optional
        λ in Å, needed for 2θ data; ``None`` takes it from a pyFAI header line
        ``Wavelength: 1.671e-11 m``.

    Returns
    -------
    q : ndarray of shape (N,)
        Increasing Q in Å⁻¹.
    intensity : ndarray of shape (N,)
    info : dict
        ``dataformat`` and ``wavelength`` (Å or None) as used.

    Raises
    ------
    ValueError
        Unreadable file, fewer than 10 points, unknown dataformat, or 2θ without λ.
    """
    p = Path(path)
    allowed = ("auto", "QA", "Qnm", "twotheta")
    if dataformat not in allowed:
        raise ValueError(f"dataformat {dataformat!r}: allowed {list(allowed)}")
    try:
        text = p.read_text(errors="replace")
    except OSError as exc:
        raise ValueError(f"pattern {p.name!r}: cannot read ({exc})") from None
    rows = []
    header_fmt = None
    header_wl = None
    body = text.split("#### start data", 1)[-1] if "#### start data" in text else text
    for line in text.splitlines():
        low = line.lower()
        if header_fmt is None and line.lstrip().startswith("#"):
            if "q_a^-1" in low:
                header_fmt = "QA"
            elif "q_nm^-1" in low:
                header_fmt = "Qnm"
            elif "2th_deg" in low:
                header_fmt = "twotheta"
        m = re.search(r"wavelength\s*[:=]\s*([-+0-9.eE]+)\s*(m|a|å|angstrom|nm)?\b", low)
        if m and header_wl is None:
            try:
                value = float(m.group(1))
                unit = m.group(2) or ("m" if value < 1e-6 else "a")
                header_wl = value * {"m": 1e10, "nm": 10.0}.get(unit, 1.0)
            except ValueError:
                pass
    for line in body.splitlines():
        if not _FLOAT.match(line + " "):
            continue
        parts = re.split(r"[\s,;]+", line.strip())
        try:
            x, y = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            continue
        rows.append((x, y))
    if len(rows) < 10:
        raise ValueError(
            f"pattern {p.name!r}: found {len(rows)} numeric rows, need >= 10 lines of 'x I' columns"
        )
    data = np.asarray(rows, float)
    fmt = header_fmt or "QA" if dataformat == "auto" else dataformat
    x, y = data[:, 0], data[:, 1]
    wl = wavelength if wavelength else header_wl
    if fmt == "Qnm":
        q = x / 10.0
    elif fmt == "twotheta":
        if not wl:
            raise ValueError(
                f"pattern {p.name!r}: x is 2θ in degrees; give the wavelength (Å) to convert to Q"
            )
        q = 4.0 * math.pi * np.sin(np.radians(x) / 2.0) / wl
    else:
        q = x
    order = np.argsort(q, kind="stable")
    q, y = q[order], y[order]
    keep = np.r_[True, np.diff(q) > 0] & np.isfinite(q) & np.isfinite(y)
    return q[keep], y[keep], {"dataformat": fmt, "wavelength": wl}


def write_pdfgetx3(path: str | Path, x: np.ndarray, y: np.ndarray, kind: str, config: dict,
                   version: str = "hisci-pdf") -> Path:
    """Write one curve in PDFgetX3's text layout.

    Layout: a ``[DEFAULT]`` block of ``key = value`` parameters, ``#### start data``,
    ``#S 1``, ``#L <x> <y>`` labels, then two columns.

    Parameters
    ----------
    path : str or Path
        Output file (``.iq``, ``.sq``, ``.fq`` or ``.gr``).
    x, y : ndarray of shape (N,)
    kind : {"iq", "sq", "fq", "gr"}
        Selects the column labels and ``outputtype``.
    config : dict
        Parameters written in the header (None is written empty).
    version : str
        Producer written as ``version = ...``.

    Returns
    -------
    Path
    """
    if kind not in COLUMN_LABELS:
        raise ValueError(f"kind {kind!r}: allowed {sorted(COLUMN_LABELS)}")
    xl, yl = COLUMN_LABELS[kind]
    lines = ["[DEFAULT]", "", f"version = {version}", "", "# input and output specifications"]
    cfg = dict(config)
    cfg["outputtype"] = kind
    for key, value in cfg.items():
        if value is None:
            value = ""
        elif isinstance(value, bool):
            value = str(value)
        elif isinstance(value, float):
            value = f"{value:.10g}"
        lines.append(f"{key} = {value}")
    lines += ["", "# End of config " + "-" * 62, "", "#### start data", "#S 1", f"#L {xl}  {yl}"]
    body = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    p = Path(path)
    with p.open("w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
        np.savetxt(fh, body, fmt="%.8g")
    return p


def read_pdfgetx3(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a PDFgetX3-style file: (x, y, config) with config values as strings."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    head, _, body = text.partition("#### start data")
    if not _:
        head, body = "", text
    config = {}
    for line in head.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            config[k.strip()] = v.strip()
    rows = [list(map(float, ln.split()[:2])) for ln in body.splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]
    arr = np.asarray(rows, float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1], config
